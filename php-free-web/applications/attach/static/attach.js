// Attach: send the upload with XMLHttpRequest so a progress bar can show the bytes sent.
// Without JavaScript the form still posts normally (no progress bar).
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form || !window.FormData || !window.XMLHttpRequest) { return; }
  var bar = document.getElementById("upload-progress");
  var status = document.getElementById("upload-status");
  var button = document.getElementById("upload-button");
  var folder = form.querySelector("input[name=files]");
  var zip = form.querySelector("input[name=zipfile]");

  function show(text, isError) {
    status.textContent = text;
    status.className = "upload-status" + (isError ? " error" : "");
  }

  function megabytes(n) { return (n / 1048576).toFixed(1) + " MB"; }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var data = new FormData();
    var fields = form.querySelectorAll("input[type=text], input[type=hidden], select");
    for (var i = 0; i < fields.length; i++) {
      if (fields[i].name) { data.append(fields[i].name, fields[i].value); }
    }
    var count = 0;
    if (folder && folder.files) {
      for (var j = 0; j < folder.files.length; j++) {
        var f = folder.files[j];
        // keep the folder structure: the server checks every relative name
        data.append("files", f, f.webkitRelativePath || f.name);
        count++;
      }
    }
    if (zip && zip.files && zip.files.length) { data.append("zipfile", zip.files[0]); count++; }
    if (!count) { show("Choose a folder or a ZIP file first.", true); return; }

    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    var token = document.querySelector("meta[name=csrf-token]");
    if (token) { xhr.setRequestHeader("X-CSRF-Token", token.getAttribute("content")); }
    xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) {
        bar.max = e.total;
        bar.value = e.loaded;
        show("Sending " + megabytes(e.loaded) + " of " + megabytes(e.total) + "…", false);
      }
    });
    xhr.upload.addEventListener("load", function () {
      bar.removeAttribute("value");  // indeterminate while the server files the images
      show("Sent. Checking and storing the files…", false);
    });
    xhr.addEventListener("load", function () {
      var answer = null;
      try { answer = JSON.parse(xhr.responseText); } catch (err) { answer = null; }
      if (answer && answer.ok && answer.redirect) {
        window.location.assign(answer.redirect);
        return;
      }
      button.disabled = false;
      bar.value = 0;
      show((answer && answer.error) || ("The server refused the upload (HTTP " + xhr.status + ")."), true);
    });
    xhr.addEventListener("error", function () {
      button.disabled = false;
      show("The upload was interrupted (network error). Nothing was stored; try again.", true);
    });
    button.disabled = true;
    bar.classList.remove("hidden");
    bar.value = 0;
    show("Starting…", false);
    xhr.send(data);
  });
})();
