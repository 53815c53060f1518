// On a phone the filter panel starts closed, so the photos come first.
document.addEventListener("DOMContentLoaded", () => {
  if (window.matchMedia("(max-width: 760px)").matches) {
    document.querySelectorAll("details.filter-panel").forEach((panel) => { panel.open = false; });
  }
});

// On a phone the main nav is one row that scrolls sideways: an edge with more links past it fades
// (data-more-before / data-more-after), and the current page's link starts in view.
function markNavEdges(nav) {
  nav.toggleAttribute("data-more-before", nav.scrollLeft > 1);
  nav.toggleAttribute("data-more-after", nav.scrollLeft + nav.clientWidth < nav.scrollWidth - 1);
}
document.addEventListener("DOMContentLoaded", () => {
  const nav = document.querySelector(".topbar nav");
  if (!nav) return;
  const current = nav.querySelector("[aria-current]");
  if (current) {
    const past = current.getBoundingClientRect().right - nav.getBoundingClientRect().right;
    if (past > 0) nav.scrollLeft += past + 24;
  }
  markNavEdges(nav);
  nav.addEventListener("scroll", () => markNavEdges(nav), { passive: true });
  window.addEventListener("resize", () => markNavEdges(nav));
});

// Keep URLs short and shareable: leave empty form fields out of htmx requests
// (and so out of the pushed URL).
document.addEventListener("htmx:configRequest", (event) => {
  const params = event.detail.parameters;
  for (const key of Array.from(params.keys ? params.keys() : Object.keys(params))) {
    const value = params.get ? params.get(key) : params[key];
    if (value === "" || value === null) {
      params.delete ? params.delete(key) : delete params[key];
    }
  }
});

// A range input shows its value in the <output> it names (data-shows-in), without inline handlers.
document.addEventListener("input", (event) => {
  const output = event.target.dataset && event.target.dataset.showsIn;
  if (output) document.getElementById(output).value = event.target.value;
});

// Esc in a form marked data-escape-cancels follows its Cancel link (htmx swaps the view back).
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  const form = event.target.closest && event.target.closest("form[data-escape-cancels]");
  const cancel = form && form.querySelector("[data-cancel]");
  if (cancel) { event.preventDefault(); cancel.click(); }
});

// Tag suggestions complete the last of the comma-separated tags: each suggestion
// carries the tags already typed in front of it.
document.addEventListener("input", (event) => {
  const input = event.target;
  if (!input.matches || !input.matches("[data-tag-input]")) return;
  const list = document.getElementById(input.getAttribute("list"));
  if (!list) return;
  if (!list.dataset.names) list.dataset.names = JSON.stringify(Array.from(list.options, (o) => o.value));
  const typed = input.value.split(",");
  const prefix = typed.slice(0, -1).map((t) => t.trim()).filter(Boolean);
  const chosen = new Set(prefix);
  const lead = prefix.length ? prefix.join(", ") + ", " : "";
  list.replaceChildren(...JSON.parse(list.dataset.names).filter((n) => !chosen.has(n)).map((n) => new Option(lead + n)));
});

// History: typing in the search box replaces the current entry (one per query, not one per
// pause in typing); a submit, a changed filter or a click adds one. The server answers with
// HX-Replace-Url or HX-Push-Url accordingly (search.views.search).
document.addEventListener("htmx:configRequest", (event) => {
  const trigger = event.detail.triggeringEvent;
  if (trigger && trigger.type === "input") event.detail.headers["X-Imgsim-Typing"] = "1";
});

// After Back or Forward, htmx puts back the page as it was, but form fields show what was
// typed last, not what the restored results were filtered by: set them from the URL.
function fillFormsFromUrl() {
  const params = new URLSearchParams(window.location.search);
  document.querySelectorAll("form[data-follows-url]").forEach((form) => {
    for (const field of form.elements) {
      if (!field.name || field.type === "hidden" || field.type === "submit" || field.type === "file") continue;
      if (field.type === "checkbox") field.checked = params.has(field.name);
      else field.value = params.get(field.name) ?? field.dataset.default ?? "";
      if (field.dataset.showsIn) document.getElementById(field.dataset.showsIn).value = field.value;
    }
  });
}
document.addEventListener("htmx:historyRestore", fillFormsFromUrl);
window.addEventListener("pageshow", (event) => { if (event.persisted) fillFormsFromUrl(); });

// Enter in a filter field fires "change" and then "submit": two requests and two history
// entries. The change is dropped when a submit is about to follow.
document.addEventListener("keydown", (event) => {
  const form = event.key === "Enter" && event.target.form;
  if (form && form.matches("form[data-follows-url]")) form.dataset.submitting = "1";
});
document.addEventListener("htmx:confirm", (event) => {
  const form = event.detail.elt;
  const trigger = event.detail.triggeringEvent;
  if (!trigger || !form.dataset || !form.matches("form[data-follows-url]")) return;
  if (trigger.type === "change" && form.dataset.submitting) event.preventDefault();
  if (trigger.type === "submit") delete form.dataset.submitting;
});

// A new filter makes the infinite scroll's pending page stale: abort it, or its answer
// would replace the new URL with the old filter's ?upto=N.
document.addEventListener("htmx:beforeRequest", (event) => {
  if (!event.detail.elt.matches || !event.detail.elt.matches("form[data-follows-url]")) return;
  document.querySelectorAll("#grid-more").forEach((more) => htmx.trigger(more, "htmx:abort"));
});
