"""merge-handler (the tutorial's diagram names it; its code is ours): merges a PR whose AI review scored
at least MERGE_MIN_SCORE through GitHub's merge API (GitHub then sends the `closed`+merged webhook, which
webhook-handler turns into `pr-merged`), and keeps the day's counters (opened, reviewed, merged) in the
groupless state key `daily-stats` that daily-report reads and resets. `state.update` keeps the counters
exact when deliveries run at once.

A plain `def` handler: it runs in a worker thread, so blocking HTTP (urllib) is fine and the event's
calls return their values directly.
"""

import json
import os
import urllib.request


def github(method, path, body=None):
    request = urllib.request.Request(
        os.environ["GITHUB_API_URL"].rstrip("/") + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + os.environ["GITHUB_TOKEN"], "Accept": "application/vnd.github+json",
                 "Content-Type": "application/json", "X-GitHub-Api-Version": "2022-11-28"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


COUNTERS = {"pr-opened": "prsOpened", "review-completed": "reviewsCompleted", "pr-merged": "prsMerged"}


def handler(event):
    event.state.update("daily-stats", [{"op": "increment", "path": COUNTERS[event.topic]}])
    if event.topic != "review-completed":
        return
    pr, repository = event.data["prNumber"], event.data["repository"]
    minimum = int(os.environ.get("MERGE_MIN_SCORE", "8"))
    if event.data["reviewScore"] < minimum:
        event.logger.info("review score below the merge bar: left open", {"prNumber": pr, "minimum": minimum})
        return
    merged = github("PUT", f"/repos/{repository}/pulls/{pr}/merge",
                    {"merge_method": "squash", "commit_title": f"Merge #{pr} (AI review passed)"})
    event.logger.info("merged" if merged.get("merged") else "not merged", {"prNumber": pr, "sha": merged.get("sha")})
