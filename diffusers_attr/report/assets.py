"""The stylesheet and script inlined into every HTML report (no external files, no CDN, works from file://)."""

CSS = """
:root {
  --bg: #f4f5f7; --card: #ffffff; --ink: #1d2330; --muted: #5d6677; --line: #e1e4ea;
  --accent: #2f6fdb; --accent-soft: #e6eefc; --bar: #2f6fdb; --warn-bg: #fff6e0; --warn-line: #f0c36d;
  --shadow: 0 1px 2px rgba(20, 30, 50, .06), 0 4px 14px rgba(20, 30, 50, .06);
  --map: 168px; --thumb: 54px;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #14171d; --card: #1d222b; --ink: #e6e9ef; --muted: #9aa3b2; --line: #2e3440;
    --accent: #7aa7ff; --accent-soft: #26324a; --bar: #7aa7ff; --warn-bg: #33290f; --warn-line: #8a6a1f;
    --shadow: none;
  }
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
main, .page-head .inner, footer { max-width: 1280px; margin: 0 auto; padding: 0 24px; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
h1, h2, h3 { margin: 0; font-weight: 600; letter-spacing: -.01em; }
a { color: var(--accent); }

.page-head { background: var(--card); border-bottom: 1px solid var(--line); padding: 22px 0 18px; margin-bottom: 22px; }
.page-head h1 { font-size: 22px; }
.page-head .subtitle { color: var(--muted); margin: 2px 0 14px; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: 10px 22px; margin: 0; }
.facts div { min-width: 0; }
.facts dt { color: var(--muted); font-size: 11.5px; text-transform: uppercase; letter-spacing: .05em; }
.facts dd { margin: 1px 0 0; overflow-wrap: break-word; }
.facts .double { grid-column: span 2; }
.facts .wide { grid-column: 1 / -1; }
.ramp { display: inline-block; width: 120px; height: 9px; border-radius: 2px; vertical-align: middle; }
.chips { display: flex; flex-wrap: wrap; gap: 6px; margin: 0; padding: 0; list-style: none; }
.chip {
  display: inline-block; padding: 1px 8px; border-radius: 999px; background: var(--accent-soft);
  color: var(--ink); font-size: 12px; text-decoration: none; white-space: nowrap;
}
a.chip:hover, a.chip:focus-visible { background: var(--accent); color: #fff; }
.notice {
  margin-top: 14px; padding: 8px 12px; border: 1px solid var(--warn-line); background: var(--warn-bg);
  border-radius: 8px;
}

.card {
  background: var(--card); border: 1px solid var(--line); border-radius: 14px; box-shadow: var(--shadow);
  padding: 18px 20px 20px; margin-bottom: 22px;
  display: grid; gap: 16px 22px; grid-template-columns: minmax(0, 1fr) 340px;
  grid-template-areas: "head head" "views detail" "items detail" "more more";
}
.card-head { grid-area: head; display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 14px; }
.card-head h2 { font-size: 17px; }
.card-head h2 a { color: inherit; text-decoration: none; }
.card-head .meta { color: var(--muted); }
.views { grid-area: views; display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.view { margin: 0; }
.view figcaption, .map figcaption { font-size: 12px; color: var(--muted); margin-bottom: 5px; }
.frame {
  width: var(--map); height: var(--map); border-radius: 8px; overflow: hidden; background: #0d0f14;
  display: flex; align-items: center; justify-content: center;
}
.frame img { width: 100%; height: 100%; object-fit: contain; display: block; }
.frame[data-map] img { aspect-ratio: var(--ratio); object-fit: cover; object-position: top; }
.frame[data-map="wide"] img { width: 100%; height: auto; }
.frame[data-map="tall"] img { width: auto; height: 100%; }
.px img { image-rendering: pixelated; }
.missing {
  width: 100%; height: 100%; display: flex; align-items: center; justify-content: center; text-align: center;
  padding: 10px; color: #c9ced8; background: repeating-linear-gradient(45deg, #262a33 0 8px, #2c313b 8px 16px);
  font-size: 12px; margin: 0;
}
.collage-view { display: flex; gap: 12px; align-items: flex-start; }
.legend { list-style: none; margin: 20px 0 0; padding: 0; font-size: 12px; max-width: 190px; }
.legend li { display: flex; align-items: center; gap: 6px; line-height: 1.6; min-width: 0; }
.legend .id { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.swatch { flex: none; width: 11px; height: 11px; border-radius: 3px; display: inline-block; box-shadow: inset 0 0 0 1px rgba(0,0,0,.15); }

.items-block { grid-area: items; min-width: 0; }
.items-block h3, .detail h3 { font-size: 13px; color: var(--muted); font-weight: 600; margin-bottom: 8px; }
.items-block .hint { font-weight: 400; }
.items { display: grid; grid-template-columns: repeat(auto-fill, minmax(228px, 1fr)); gap: 8px; margin: 0; padding: 0; list-style: none; }
.item {
  width: 100%; display: flex; gap: 10px; align-items: center; text-align: left; cursor: pointer;
  padding: 7px 9px; border: 1px solid var(--line); border-radius: 10px; background: var(--card);
  color: inherit; font: inherit; transition: border-color .12s, background .12s;
}
.item:hover, .item.shown { border-color: var(--accent); }
.item[aria-pressed="true"] { background: var(--accent-soft); border-color: var(--accent); }
.item:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
.thumb {
  flex: none; width: var(--thumb); height: var(--thumb); border-radius: 6px; overflow: hidden; background: #0d0f14;
  display: flex; align-items: center; justify-content: center;
}
.thumb img { width: 100%; height: 100%; object-fit: contain; display: block; }
.thumb .missing { font-size: 10px; padding: 2px; }
.item-text { min-width: 0; flex: 1; display: flex; flex-direction: column; gap: 1px; }
.item-title { display: flex; align-items: center; gap: 5px; min-width: 0; }
.rank { color: var(--muted); font-size: 12px; flex: none; }
.share { font-weight: 600; }
.item-id { font-weight: 600; font-size: 13px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.item-sub { color: var(--muted); font-size: 12px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.item-stats { display: flex; justify-content: space-between; gap: 8px; font-size: 12px; white-space: nowrap; font-variant-numeric: tabular-nums; }
.bar { height: 4px; border-radius: 2px; background: var(--line); overflow: hidden; margin-top: 2px; }
.bar span { display: block; height: 100%; background: var(--bar); border-radius: 2px; }

.detail {
  grid-area: detail; align-self: start; position: sticky; top: 12px;
  border: 1px solid var(--line); border-radius: 12px; padding: 14px; background: var(--bg);
}
.detail-title { font-size: 15px; font-weight: 600; overflow-wrap: anywhere; }
.detail-caption { color: var(--muted); margin: 2px 0 0; overflow-wrap: anywhere; }
.detail-stats { font-size: 12.5px; margin: 4px 0 10px; font-variant-numeric: tabular-nums; }
.maps { display: grid; grid-template-columns: 1fr 1fr; gap: 10px; }
.map { margin: 0; min-width: 0; }
.map .frame { width: 100%; height: auto; aspect-ratio: 1 / 1; }
.details-more { grid-area: more; color: var(--muted); font-size: 12.5px; }
.details-more summary { cursor: pointer; }
.details-more table { border-collapse: collapse; margin-top: 8px; font-variant-numeric: tabular-nums; }
.details-more th, .details-more td { text-align: left; padding: 2px 14px 2px 0; border-bottom: 1px solid var(--line); }
.details-more pre { white-space: pre-wrap; overflow-wrap: anywhere; margin: 8px 0 0; }

.skipped { background: var(--card); border: 1px solid var(--warn-line); border-radius: 14px; padding: 16px 20px; margin-bottom: 22px; }
.skipped h2 { font-size: 16px; margin-bottom: 6px; }
.skipped ul { margin: 0; padding-left: 18px; }
.skipped li { margin: 3px 0; overflow-wrap: anywhere; }
footer { color: var(--muted); font-size: 12px; padding-bottom: 28px; }

@media (max-width: 860px) {
  .card { grid-template-columns: minmax(0, 1fr); grid-template-areas: "head" "views" "detail" "items" "more"; }
  .detail { position: static; max-width: 440px; }
  :root { --map: 140px; }
}
"""

JS = """
(function () {
  "use strict";

  function fill(slot, src, alt, note) {
    var current = slot.querySelector("img");
    if (src && current && current.getAttribute("src") === src) { return; }
    slot.textContent = "";
    if (src) {
      var img = document.createElement("img");
      img.src = src;
      img.alt = alt;
      slot.appendChild(img);
    } else {
      var p = document.createElement("p");
      p.className = "missing";
      p.textContent = note;
      slot.appendChild(p);
    }
  }

  function show(card, button) {
    var panel = card.querySelector(".detail");
    var d = button.dataset;
    panel.querySelector(".detail-title").textContent = "#" + d.rank + " \\u00b7 " + d.id;
    panel.querySelector(".detail-caption").textContent = d.caption || "";
    panel.querySelector(".detail-stats").textContent = d.stats || "";
    fill(panel.querySelector("[data-slot=query]"), d.query, "query map of " + d.id, d.queryNote);
    fill(panel.querySelector("[data-slot=source]"), d.source, "source map of " + d.id, d.sourceNote);
    var items = card.querySelectorAll(".item");
    for (var i = 0; i < items.length; i++) {
      items[i].classList.toggle("shown", items[i] === button);
    }
  }

  var cards = document.querySelectorAll(".card");
  Array.prototype.forEach.call(cards, function (card) {
    var list = card.querySelector(".items");
    var items = card.querySelectorAll(".item");
    if (!list || !items.length) { return; }
    var pinned = card.querySelector('.item[aria-pressed="true"]') || items[0];
    Array.prototype.forEach.call(items, function (button) {
      button.addEventListener("mouseenter", function () { show(card, button); });
      button.addEventListener("focus", function () { show(card, button); });
      button.addEventListener("click", function () {
        pinned.setAttribute("aria-pressed", "false");
        pinned = button;
        button.setAttribute("aria-pressed", "true");
        show(card, button);
      });
    });
    list.addEventListener("mouseleave", function () {
      var focused = document.activeElement;
      show(card, focused && focused.classList.contains("item") && list.contains(focused) ? focused : pinned);
    });
    list.addEventListener("focusout", function (event) {
      if (!event.relatedTarget || !list.contains(event.relatedTarget)) { show(card, pinned); }
    });
  });
})();
"""
