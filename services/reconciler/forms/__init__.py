"""The official forms of Thông tư 03/2025/TT-VPCP that doisoat fills in from a dossier's data.

Form 04 (*Văn bản xin lỗi và đề nghị gia hạn thời gian giải quyết*) is drafted for an overdue
dossier, so the handler signs it instead of writing it; form 06 (*Phiếu kiểm soát quá trình
giải quyết hồ sơ*) is rebuilt from the progress steps with §7's arithmetic. The builders
(:mod:`.apology`, :mod:`.control_sheet`) are pure: a dossier's facts in, a ``.docx`` document
out; :mod:`.service` reads the facts; :mod:`.links` says where the workspace serves them.
"""
