// On a phone the filter panel starts closed, so the photos come first.
document.addEventListener("DOMContentLoaded", () => {
  if (window.matchMedia("(max-width: 760px)").matches) {
    document.querySelectorAll("details.filter-panel").forEach((panel) => { panel.open = false; });
  }
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
