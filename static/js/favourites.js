// Stars on cards: grids are cached for everyone, so each person's stars are set here
// from the ids in #my-favourites, on load and whenever htmx adds content. A star the
// server rendered for this person (data-known: the photo page, a click's answer) is
// the truth and updates what the others show.
(() => {
  const data = document.getElementById("my-favourites");
  const starred = new Set(data ? JSON.parse(data.textContent) : []);

  function mark() {
    const buttons = Array.from(document.querySelectorAll("button[data-favourite]"));
    for (const button of buttons.filter((b) => b.hasAttribute("data-known"))) {
      const id = Number(button.dataset.favourite);
      if (button.getAttribute("aria-pressed") === "true") starred.add(id); else starred.delete(id);
    }
    for (const button of buttons.filter((b) => !b.hasAttribute("data-known"))) {
      const on = starred.has(Number(button.dataset.favourite));
      button.setAttribute("aria-pressed", on ? "true" : "false");
      button.value = on ? "0" : "1";
      button.hidden = false;
    }
  }

  document.addEventListener("DOMContentLoaded", mark);
  document.addEventListener("htmx:afterSettle", mark);
})();
