// Selection mode on a grid: "Select" (or ticking the checkbox a card shows on hover or
// focus) shows a checkbox on every card; a click on a card
// then ticks it instead of opening the photo, shift-click ticks the range from the last
// one; "all N matching" stands for the whole filtered set, loaded or not. The boxes sit in
// the cards (cached, the same for everyone) and join the bar's form by form="bulk-form".
(() => {
  let last = null; // the box clicked last, for shift-click ranges

  const bar = () => document.getElementById("bulk-form");
  const boxes = () => Array.from(document.querySelectorAll("input.select-box"));

  function changed() {
    // selection.js recounts on a change of any of the form's boxes.
    const box = boxes()[0];
    if (box && bar()) box.dispatchEvent(new Event("change", { bubbles: true }));
  }

  function setSelecting(on, { keep = false } = {}) {
    document.body.classList.toggle("selecting", on);
    const toggle = document.querySelector("[data-bulk-toggle]");
    if (toggle) {
      toggle.setAttribute("aria-pressed", on ? "true" : "false");
      toggle.textContent = on ? "Done" : "Select";
    }
    if (!on && !keep) clear();
  }

  function clear() {
    boxes().forEach((box) => { box.checked = false; });
    document.querySelectorAll("[data-select-everything][form=bulk-form], #bulk-form [data-select-shown]").forEach((box) => {
      box.checked = false;
    });
    changed();
  }

  function tick(box, shift) {
    if (shift && last && last !== box) {
      const all = boxes();
      const [from, to] = [all.indexOf(last), all.indexOf(box)].sort((a, b) => a - b);
      all.slice(from, to + 1).forEach((each) => { each.checked = last.checked; });
    } else {
      last = box;
    }
    changed();
  }

  document.addEventListener("click", (event) => {
    if (event.target.closest("[data-bulk-toggle]")) {
      setSelecting(!document.body.classList.contains("selecting"));
      return;
    }
    if (event.target.closest("[data-bulk-none]")) { clear(); return; }
    const box = event.target.closest("input.select-box");
    if (box && bar()) { // a box shown on hover starts selection mode
      if (!document.body.classList.contains("selecting")) setSelecting(true, { keep: true });
      tick(box, event.shiftKey);
      return;
    }
    if (!document.body.classList.contains("selecting")) return;
    const card = event.target.closest(".card-photo");
    if (card && event.target.closest("a")) { // a click on the photo ticks it while selecting
      event.preventDefault();
      const cardBox = card.querySelector("input.select-box");
      cardBox.checked = !cardBox.checked;
      tick(cardBox, event.shiftKey);
    }
  });

  document.addEventListener("change", (event) => {
    if (event.target.matches && event.target.matches("#bulk-form [data-select-shown]")) {
      boxes().forEach((box) => { box.checked = event.target.checked; });
      changed();
    }
    if (event.target.matches && event.target.matches("[data-select-everything][form=bulk-form]")) {
      boxes().forEach((box) => { box.checked = event.target.checked; }); // what is loaded shows it too
    }
  });

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && document.body.classList.contains("selecting") && !event.target.closest("input, textarea, select")) {
      setSelecting(false);
    }
  });

  // Grid pages loaded while "all matching" is ticked are part of it.
  document.addEventListener("htmx:afterSettle", () => {
    const everything = document.querySelector("[data-select-everything][form=bulk-form]");
    if (everything && everything.checked) boxes().forEach((box) => { box.checked = true; });
    changed();
  });
})();
