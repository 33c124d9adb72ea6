// Live counts on Today: asks the nav's data-counts address (/today/counts) every data-every seconds and puts
// each count where the page marks it (data-count="held", data-count="held.price_mismatch", ...), without a
// reload. Progressive enhancement only: without JavaScript the page shows the counts of its loading.
(function () {
  "use strict";
  const nav = document.querySelector("[data-counts]");
  if (!nav) return;
  const every = Math.max(5, parseInt(nav.dataset.every, 10) || 10) * 1000;

  async function refresh() {
    let answer;
    try {
      answer = await fetch(nav.dataset.counts, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch (failed) {
      return; // offline: the next round tries again
    }
    if (!answer.ok || !(answer.headers.get("content-type") || "").includes("json")) return;
    const body = await answer.json();
    document.querySelectorAll("[data-count]").forEach(function (element) {
      const shown = body.shown[element.dataset.count];
      const text = shown === undefined ? "0" : shown;
      if (element.textContent !== text) element.textContent = text;
    });
  }

  setInterval(refresh, every);
})();
