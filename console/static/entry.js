// Order entry (/orders/new): refreshes a line's product, customer's price, stock and earliest date as it is
// typed. Progressive enhancement only: the form's Check button shows the same without JavaScript.
(function () {
  "use strict";
  const form = document.querySelector("form[data-quote]");
  if (!form) return;
  const timers = {};
  form.addEventListener("input", function (event) {
    const match = /^line-(\d+)-(product|quantity)$/.exec(event.target.name || "");
    if (!match) return;
    clearTimeout(timers[match[1]]);
    timers[match[1]] = setTimeout(function () { refresh(match[1]); }, 350);
  });

  async function refresh(n) {
    const customer = form.elements["customer"].value.trim();
    const product = form.elements["line-" + n + "-product"].value.trim();
    if (!customer || !product) return;
    const query = new URLSearchParams({
      customer: customer,
      product: product,
      quantity: form.elements["line-" + n + "-quantity"].value.trim(),
    });
    let answer;
    try {
      answer = await fetch(form.dataset.quote + "?" + query, { headers: { Accept: "application/json" } });
    } catch (failed) {
      return; // offline: Check still works
    }
    if (!answer.ok) return;
    const line = await answer.json();
    ["name", "price", "available", "earliest"].forEach(function (key) {
      const cell = document.getElementById("line-" + n + "-" + key);
      if (cell) cell.textContent = line[key] || "";
    });
  }
})();
