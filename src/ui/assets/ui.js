// slo-warden UI: the pages work without it. It only saves a click: a filter applies as soon as
// it changes, and "/" moves to the search box.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form.filters");
  if (form) {
    form.querySelectorAll("select, input[type=checkbox]").forEach((el) =>
      el.addEventListener("change", () => form.requestSubmit()));
  }
  const search = document.querySelector("input[type=search]");
  document.addEventListener("keydown", (e) => {
    const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement?.tagName);
    if (search && e.key === "/" && !typing) {
      e.preventDefault();
      search.focus();
    }
  });
});
