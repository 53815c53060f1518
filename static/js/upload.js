// Upload page: drag-and-drop, and one request per file so each file shows its own
// progress and result. Without JavaScript the form still posts all files at once.
(function () {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const input = form.querySelector("input[type=file]");
  const zone = form.querySelector(".dropzone");
  const results = document.getElementById("upload-results");
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;

  ["dragenter", "dragover"].forEach((name) => zone.addEventListener(name, (event) => {
    event.preventDefault();
    zone.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((name) => zone.addEventListener(name, () => zone.classList.remove("over")));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    input.files = event.dataTransfer.files;
  });

  function uploadOne(file, item) {
    return new Promise((resolve) => {
      const request = new XMLHttpRequest();
      const data = new FormData();
      data.append("files", file);
      request.open("POST", form.action);
      request.setRequestHeader("X-CSRFToken", csrf);
      request.setRequestHeader("HX-Request", "true");
      const bar = item.querySelector("progress");
      request.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) bar.value = (event.loaded / event.total) * 100;
      });
      request.addEventListener("load", () => {
        const page = new DOMParser().parseFromString(request.responseText, "text/html");
        const outcome = page.querySelector(".outcome, .error");
        item.replaceWith(outcome || Object.assign(item, { textContent: `${file.name}: failed (${request.status})` }));
        resolve();
      });
      request.addEventListener("error", () => {
        item.textContent = `${file.name}: the upload was interrupted`;
        item.className = "outcome failed";
        resolve();
      });
      request.send(data);
    });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const files = Array.from(input.files);
    if (!files.length) return;
    results.innerHTML = '<ul class="outcomes"></ul>';
    const list = results.querySelector("ul");
    const items = files.map((file) => {
      const item = document.createElement("li");
      item.className = "outcome uploading";
      item.textContent = `${file.name} `;
      item.appendChild(Object.assign(document.createElement("progress"), { max: 100, value: 0 }));
      list.appendChild(item);
      return item;
    });
    // Two at a time: the server decodes one while the next one travels.
    const queue = files.map((file, i) => [file, items[i]]);
    const worker = async () => { while (queue.length) { const [file, item] = queue.shift(); await uploadOne(file, item); } };
    await Promise.all([worker(), worker()]);
    form.reset();
  });
})();
