// The review console's few behaviours: the two players kept in step, the timeline seeking
// them, and live progress on the job list and an unfinished job's page.
"use strict";

function linkPlayers() {
  const source = document.getElementById("source");
  const dub = document.getElementById("dub");
  if (!source || !dub) return;
  const clock = document.getElementById("clock");
  const play = document.getElementById("play");
  // The dub leads (it carries the new sound); the source follows it.
  const follow = () => {
    if (Math.abs(source.currentTime - dub.currentTime) > 0.08) source.currentTime = dub.currentTime;
  };
  dub.addEventListener("play", () => { follow(); source.play(); play.textContent = "Pause both"; });
  dub.addEventListener("pause", () => { source.pause(); play.textContent = "Play both"; });
  dub.addEventListener("seeked", follow);
  dub.addEventListener("timeupdate", () => { follow(); clock.textContent = dub.currentTime.toFixed(2) + " s"; });
  play.addEventListener("click", () => { if (dub.paused) dub.play(); else dub.pause(); });
  for (const shot of document.querySelectorAll("#timeline .shot")) {
    shot.addEventListener("click", () => {
      dub.currentTime = parseFloat(shot.dataset.start) + 0.001;
      source.currentTime = dub.currentTime;
    });
  }
}

async function refreshJobs() {
  const table = document.getElementById("jobs");
  if (!table) return;
  const state = table.dataset.state;
  const response = await fetch("/console/jobs.json" + (state ? "?state=" + encodeURIComponent(state) : ""),
                               { credentials: "same-origin" });
  if (!response.ok) return;
  for (const job of await response.json()) {
    const row = table.querySelector(`tr[data-job="${job.id}"]`);
    if (!row) continue;
    const cell = row.querySelector(".state");
    cell.textContent = job.state;
    cell.className = "state state-" + job.state;
    row.querySelector("progress").value = job.progress;
    row.querySelector(".pct").textContent = job.progress + "%";
  }
}

async function refreshJob() {
  const card = document.getElementById("job");
  if (!card || ["succeeded", "failed", "cancelled"].includes(card.dataset.state)) return;
  const response = await fetch(`/console/jobs/${card.dataset.job}/live.json`, { credentials: "same-origin" });
  if (!response.ok) return;
  const job = await response.json();
  document.getElementById("job-state").textContent = job.state;
  document.getElementById("job-progress").value = job.progress;
  if (["succeeded", "failed", "cancelled"].includes(job.state)) location.reload();
}

document.addEventListener("DOMContentLoaded", () => {
  linkPlayers();
  setInterval(refreshJobs, 2000);
  setInterval(refreshJob, 2000);
});
