/* The desk's return register (/returns): keep the scan field ready for the next code.
 *
 * The field is emptied as soon as htmx has taken its value (so a scanner may start the next code
 * while the answer is on its way) and focused again after every answer, unless the officer has
 * moved the focus elsewhere meanwhile. Refusals (403, 422)
 * arrive as a short message for the status line and are shown there, not dropped.
 */
(function () {
  "use strict";

  function field() {
    return document.getElementById("ma_ho_so");
  }

  function inRegister(element) {
    return Boolean(element && element.closest && element.closest("#scan-form, #today"));
  }

  // What had the focus when the last request left: if the officer has moved on since (Tab to
  // «Loại», say), the answer must not pull the focus back.
  var focusAtSend = null;

  function refocus() {
    var input = field();
    var now = document.activeElement;
    var lost = !now || now === document.body || !document.contains(now);
    if (input && (lost || now === focusAtSend)) {
      input.focus();
    }
  }

  function say(text) {
    var line = document.getElementById("scan-status");
    if (!line) {
      return;
    }
    var notice = document.createElement("p");
    notice.className = "notice error";
    notice.textContent = text;
    line.replaceChildren(notice);
  }

  document.addEventListener("htmx:configRequest", function (event) {
    var input = field();
    if (!inRegister(event.detail.elt)) {
      return;
    }
    focusAtSend = document.activeElement;
    if (input && event.detail.elt.id === "scan-form") {
      input.value = "";
    }
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr ? event.detail.xhr.status : 0;
    var target = event.detail.target;
    if (target && target.id === "scan-status" && status >= 400 && status < 500) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // The status line stays in the page whatever was swapped (a withdraw button is gone with its
  // row): once its answer has settled, the scan field is where the next code goes.
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.target && event.target.id === "scan-status") {
      refocus();
    }
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail.elt && event.detail.elt.id === "scan-form") {
      refocus();
    }
  });

  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr ? event.detail.xhr.status : 0;
    if (status >= 500 && inRegister(event.detail.elt)) {
      say("Máy chủ gặp lỗi: lượt vừa rồi có thể chưa được ghi nhận, hãy xem danh sách rồi quét lại.");
    }
  });

  document.addEventListener("htmx:sendError", function (event) {
    if (inRegister(event.detail.elt)) {
      say("Không kết nối được máy chủ: lượt vừa rồi chưa được ghi nhận, hãy quét lại.");
      refocus();
    }
  });
})();
