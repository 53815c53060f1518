// Selections of photos (the trash, a duplicate group): live counts, "select all", the
// keeper choice, and a confirmation that names the number of photos and their size.
// Without JavaScript the server asks instead (a confirmation page), so nothing here is
// needed for safety; it makes the same question quicker.
(function () {
  function formatBytes(bytes) {
    const units = ["bytes", "KB", "MB", "GB", "TB"];
    let value = bytes;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return unit === 0 ? `${value} bytes` : `${value.toFixed(1)} ${units[unit]}`;
  }

  function plural(count) { return `${count} photo${count === 1 ? "" : "s"}`; }

  // What a form's action applies to: the ticked boxes, or the whole set ("all N").
  function selection(form, name) {
    const everything = Array.from(form.elements).find((box) => box.matches("[data-select-everything]") && box.checked);
    if (everything) {
      return { count: Number(everything.dataset.total), bytes: Number(everything.dataset.totalBytes || 0) };
    }
    // form.elements includes the boxes that join the form from elsewhere (form="..."), as a grid's cards do.
    const boxes = Array.from(form.elements).filter((box) => box.name === name && box.checked && !box.disabled);
    return { count: boxes.length, bytes: boxes.reduce((sum, box) => sum + Number(box.dataset.bytes || 0), 0) };
  }

  function refresh(form) {
    form.querySelectorAll("[data-count-of]").forEach((counter) => {
      counter.textContent = selection(form, counter.dataset.countOf).count;
    });
    form.querySelectorAll("[data-requires-selection]").forEach((button) => {
      button.disabled = selection(form, button.dataset.requiresSelection).count === 0;
    });
  }

  document.addEventListener("change", (event) => {
    const input = event.target;
    const form = input.form;
    if (!form) return;
    if (input.matches("[data-select-all]")) {
      form.querySelectorAll('input[name="ids"]').forEach((box) => { box.checked = input.checked; });
    }
    if (input.matches("[data-review-group] input[name=keeper]")) {
      // The photo to keep cannot also go to the trash.
      form.querySelectorAll("input[name=trash]").forEach((box) => {
        const isKeeper = box.value === input.value;
        box.disabled = isKeeper;
        if (isKeeper) box.checked = false;
      });
      form.querySelectorAll(".member").forEach((member) => {
        member.classList.toggle("keeper", member.dataset.member === input.value);
      });
    }
    refresh(form);
  });

  document.addEventListener("htmx:confirm", (event) => {
    const element = event.detail.elt;
    const template = element.dataset && element.dataset.confirmSelection;
    if (!template) return; // a plain hx-confirm: htmx asks its own question
    event.preventDefault();
    const picked = selection(element.form || element.closest("form"),
      element.dataset.selectionName || "ids");
    if (picked.count === 0) {
      if (element.dataset.requiresSelection) return; // nothing selected: nothing to do
      event.detail.issueRequest(true); // nothing will be destroyed: no question to ask
      return;
    }
    const question = template.replace("{count}", plural(picked.count)).replace("{size}", formatBytes(picked.bytes));
    if (window.confirm(question)) event.detail.issueRequest(true);
  });

  function setUp(root) {
    root.querySelectorAll("form").forEach(refresh);
  }
  document.addEventListener("DOMContentLoaded", () => setUp(document));
  document.addEventListener("htmx:load", (event) => setUp(event.detail.elt.parentNode || document));
})();
