// The live example of a participant-ID regex: asks the server while the admin types.
(function () {
  document.querySelectorAll("input.id-pattern").forEach(function (input) {
    var out = input.closest(".field").querySelector(".id-example");
    var timer = null;
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        fetch(input.dataset.example + "?pattern=" + encodeURIComponent(input.value), {
          headers: { Accept: "application/json" },
          credentials: "same-origin",
        })
          .then(function (r) { return r.json(); })
          .then(function (d) {
            out.textContent = d.text;
            out.classList.toggle("error", !d.ok);
          });
      }, 250);
    });
  });
})();
