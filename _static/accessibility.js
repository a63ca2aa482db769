// Accessibility fixes for markup the theme and Sphinx write (axe-core reports
// each as serious or critical; tests/test_book_browser.py checks every page).
document.addEventListener("DOMContentLoaded", () => {
  // pydata-sphinx-theme: the chevron that expands a chapter's sections in the
  // sidebar is a <summary> holding only an icon, so a screen reader announces a
  // nameless control (summary-name). Name it after the chapter it expands.
  document.querySelectorAll("li.has-children > details > summary").forEach((summary) => {
    if (summary.textContent.trim() || summary.hasAttribute("aria-label")) return;
    const link = summary.closest("li").querySelector(":scope > a.reference");
    summary.setAttribute("aria-label", link ? `Sections of ${link.textContent.trim()}` : "Sections");
  });
  // Sphinx: the bibliography is a role="list" whose entries carry the deprecated
  // role doc-biblioentry instead of listitem (aria-required-children).
  document.querySelectorAll('[role="list"] > [role="doc-biblioentry"]').forEach((entry) => {
    entry.setAttribute("role", "listitem");
  });
});
