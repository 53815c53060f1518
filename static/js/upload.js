// Upload progress and drag-and-drop: the two things htmx does not do by itself.
(function () {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const input = form.querySelector("input[type=file]");
  const bar = document.getElementById("upload-progress");
  const zone = form.querySelector(".dropzone");
  ["dragenter", "dragover"].forEach((name) => zone.addEventListener(name, (event) => {
    event.preventDefault();
    zone.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((name) => zone.addEventListener(name, () => zone.classList.remove("over")));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    input.files = event.dataTransfer.files;
  });
  form.addEventListener("htmx:xhr:progress", (event) => {
    bar.hidden = false;
    bar.value = event.detail.total ? (event.detail.loaded / event.detail.total) * 100 : 0;
  });
  form.addEventListener("htmx:afterRequest", () => { bar.hidden = true; form.reset(); });
})();
