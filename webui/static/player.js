// The dashboard's player and live view. Frames are the dashboard's own panels at one
// interval (webui/playback.py), so the flow drawing, the wallets and the chart markers
// move together; the URL keeps the position. While intervals settle, /api/live (the
// index's progress, never the chain) brings new ones in.
(function () {
  "use strict";
  var player = document.getElementById("player");
  var live = document.getElementById("live");
  var params = new URLSearchParams(location.search);
  var state = null;

  function frameUrl(k, withCharts) {
    var query = new URLSearchParams();
    ["from", "to"].forEach(function (name) { if (params.get(name)) query.set(name, params.get(name)); });
    if (state.group) query.set("group", state.group);
    if (withCharts) query.set("charts", "1");
    return player.dataset.frameUrl.replace("999999999", String(k)) + "?" + query.toString();
  }

  function moveMarkers(k) {
    document.querySelectorAll("#charts line.marker").forEach(function (line) {
      var d = line.dataset, x0 = Number(d.x0), x1 = Number(d.x1);
      var inside = k >= x0 && k <= x1;
      var x = Number(d.left) + (k + Number(d.step) - x0) / (x1 - x0) * Number(d.plotW);
      line.setAttribute("x1", x.toFixed(1)); line.setAttribute("x2", x.toFixed(1));
      line.setAttribute("visibility", inside ? "visible" : "hidden");
    });
  }

  var requested = 0;
  function show(k, withCharts) {
    k = Math.max(state.first, Math.min(state.last, k));
    var ticket = ++requested;
    state.k = k;
    slider.value = String(k);
    return fetch(frameUrl(k, withCharts)).then(function (r) {
      if (!r.ok) throw new Error("frame " + k + ": HTTP " + r.status);
      return r.json();
    }).then(function (frame) {
      if (ticket !== requested) return;  // a later step overtook this one
      state.first = frame.first;
      slider.min = String(frame.first);
      Object.keys(frame.panels).forEach(function (id) {
        var element = document.getElementById(id);
        if (element) element.innerHTML = frame.panels[id];
      });
      position.textContent = "#" + frame.interval + " · " + frame.when;
      slider.setAttribute("aria-valuetext", "interval " + frame.interval + ", " + frame.when);
      var url = new URL(frame.url, location.href);
      if (speed.value !== "1") url.searchParams.set("speed", speed.value);
      history.replaceState(null, "", url.pathname + url.search);
      player.dataset.k = String(frame.interval);
      moveMarkers(frame.interval);
    });
  }

  var timer = null;
  function setPlaying(on) {
    state.playing = on;
    play.textContent = on ? "❚❚ Pause" : "▶ Play";
    play.setAttribute("aria-pressed", on ? "true" : "false");
    if (timer) { clearTimeout(timer); timer = null; }
    if (on) tick();
  }
  function tick() {
    if (!state.playing) return;
    if (state.k >= state.last) { setPlaying(false); return; }
    var started = performance.now();
    show(state.k + 1).then(function () {
      var wait = Math.max(0, 1000 / Number(speed.value) - (performance.now() - started));
      if (state.playing) timer = setTimeout(tick, wait);
    }, function () { setPlaying(false); });
  }

  var play, speed, slider, position;
  if (player) {
    play = document.getElementById("play");
    speed = document.getElementById("speed");
    slider = document.getElementById("step");
    position = document.getElementById("position");
    state = {k: Number(player.dataset.k), first: Number(player.dataset.first), last: Number(player.dataset.last),
             group: player.dataset.group, playing: false, fixedTo: player.dataset.fixedTo === "True"};
    play.addEventListener("click", function () {
      if (!state.playing && state.k >= state.last) state.k = state.first - 1;  // from the start again
      setPlaying(!state.playing);
    });
    slider.addEventListener("input", function () { setPlaying(false); show(Number(slider.value)); });
    speed.addEventListener("change", function () {
      var url = new URL(location.href);
      if (speed.value === "1") url.searchParams.delete("speed"); else url.searchParams.set("speed", speed.value);
      history.replaceState(null, "", url.pathname + url.search);
    });
    document.addEventListener("keydown", function (ev) {
      var tag = (ev.target.tagName || "").toLowerCase();
      if (tag === "input" && ev.target !== slider || tag === "select" || tag === "textarea" || ev.altKey || ev.ctrlKey || ev.metaKey) return;
      if (ev.key === "ArrowRight" || ev.key === "ArrowLeft") {
        ev.preventDefault(); setPlaying(false); show(state.k + (ev.key === "ArrowRight" ? 1 : -1));
      } else if (ev.key === " " && ev.target === document.body) {
        ev.preventDefault(); play.click();
      }
    });
    // The flow panel's "← #k / #k →" step within the page instead of reloading it.
    document.addEventListener("click", function (ev) {
      var link = ev.target.closest && ev.target.closest("#flow-panel a[data-step]");
      if (link) { ev.preventDefault(); setPlaying(false); show(state.k + Number(link.dataset.step)); }
    });
  }

  // -- live: follow the index while a run settles ------------------------------------------
  if (!live) return;
  var seen = live.dataset.last === "" ? null : Number(live.dataset.last);
  var text = document.getElementById("live-text"), fill = document.getElementById("live-fill");
  var wasRunning = false;
  function poll() {
    fetch(live.dataset.api).then(function (r) { return r.json(); }).then(function (now) {
      var run = now.run, running = run && run.settled < run.total;
      if (running || wasRunning) {
        live.hidden = false;
        text.textContent = running ? "live: " + run.settled + " of " + run.total + " intervals settled (" +
          Math.floor(100 * run.settled / run.total) + "%)" : "run complete: " + run.total + " intervals settled";
        fill.style.width = (run ? 100 * run.settled / run.total : 100) + "%";
      } else if (now.last_interval !== null && seen !== null && now.last_interval > seen) {
        live.hidden = false;
        text.textContent = "live: interval #" + now.last_interval + " settled";
        fill.style.width = "100%";
      }
      wasRunning = running || wasRunning;
      if (now.last_interval === null || now.last_interval === seen) return;
      if (!player) { location.reload(); return; }  // the first settlement: show the whole dashboard
      var following = !state.playing && state.k === state.last;
      var previous = seen;
      seen = now.last_interval;
      document.getElementById("settled-count").textContent = now.intervals + " intervals settled";
      if (state.fixedTo) return;
      state.last = now.last_interval;
      slider.max = String(state.last);
      if (following || previous === null) show(state.last, true);
    }).catch(function () { /* the server restarts: try again at the next poll */ })
      .then(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 1000);
})();
