// The photo page: the full-size view (a <dialog>), keyboard shortcuts (elements marked
// data-shortcut="key" are clicked), and the list of shortcuts on "?".
(() => {
  function openLightbox() {
    const dialog = document.getElementById("lightbox");
    if (!dialog) return false;
    const image = dialog.querySelector("img[data-src]");
    if (image && !image.getAttribute("src")) image.src = image.dataset.src; // the original: only when asked
    if (!dialog.open) dialog.showModal();
    return true;
  }

  document.addEventListener("click", (event) => {
    const opener = event.target.closest("[data-lightbox]");
    if (opener && openLightbox()) { event.preventDefault(); return; }
    const named = event.target.closest("[data-opens]");
    if (named) document.getElementById(named.dataset.opens).showModal();
  });

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest && event.target.closest("input, textarea, select, [contenteditable]")) return;
    const lightbox = document.getElementById("lightbox");
    if (event.key === "f" && document.querySelector("[data-lightbox]")) { openLightbox(); return; }
    if (event.key === "s") {
      const star = document.querySelector(".title-row .star");
      if (star) { star.click(); event.preventDefault(); }
      return;
    }
    const target = document.querySelector(`[data-shortcut="${CSS.escape(event.key)}"]`);
    if (!target) return;
    event.preventDefault();
    if (target.matches("[data-opens]")) { document.getElementById(target.dataset.opens).showModal(); return; }
    // Walking with the full-size view open keeps it open on the next photo.
    if ((event.key === "ArrowLeft" || event.key === "ArrowRight") && lightbox && lightbox.open) {
      window.location.href = target.href + (target.href.includes("#") ? "" : "#full");
      return;
    }
    target.click();
  });

  document.addEventListener("DOMContentLoaded", () => {
    if (window.location.hash === "#full") openLightbox();
  });
})();
