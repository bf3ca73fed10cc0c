// The inbox's small enhancements (CSP: no inline script). Without them the page still works:
// the checkboxes, the note and the button post the form; htmx swaps the inbox when it can.
(function () {
  "use strict";

  function boxes(form) {
    return Array.prototype.slice.call(form.querySelectorAll('input[type=checkbox][name="id"]'));
  }

  // "Select all" is useful only with a script: it is hidden in the page and shown here.
  function refresh(form) {
    var all = boxes(form);
    var chosen = all.filter(function (box) { return box.checked; }).length;
    var master = form.querySelector("[data-select-all]");
    if (master) {
      master.hidden = all.length === 0;
      master.checked = all.length > 0 && chosen === all.length;
      master.indeterminate = chosen > 0 && chosen < all.length;
    }
    var counter = form.querySelector("[data-selected]");
    if (counter) {
      counter.textContent = chosen ? "Đã chọn " + chosen + " sai lệch" : "";
    }
  }

  function refreshAll() {
    var form = document.getElementById("ack");
    if (form) {
      refresh(form);
    }
  }

  document.addEventListener("change", function (event) {
    var box = event.target;
    // form.id would be the inputs named "id": read the attribute.
    if (!(box instanceof HTMLInputElement) || !box.form || box.form.getAttribute("id") !== "ack") {
      return;
    }
    if (box.hasAttribute("data-select-all")) {
      boxes(box.form).forEach(function (each) { each.checked = box.checked; });
    }
    refresh(box.form);
  });

  document.addEventListener("DOMContentLoaded", refreshAll);
  document.addEventListener("htmx:afterSettle", refreshAll);

  // A refused request (nothing chosen, outside the officer's units…) answers a small message:
  // show it above the table instead of leaving the page unchanged.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var detail = event.detail;
    var status = detail.xhr ? detail.xhr.status : 0;
    var place = document.getElementById("inbox-message");
    var inbox = document.getElementById("inbox");
    if (status >= 400 && status < 500 && place && inbox && inbox.contains(detail.elt)) {
      detail.shouldSwap = true;
      detail.isError = false;
      detail.target = place;
      detail.swapOverride = "innerHTML";
    }
  });
})();
