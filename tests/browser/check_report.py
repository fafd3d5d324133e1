#!/usr/bin/env python3
"""The HTML report in a real browser (headless Chromium).

Renders the report of a real script with `hldlab run SCRIPT --report`, opens it in headless
Chromium inside a small harness page that measures every chart, and checks: no console
messages at all (the report has no JavaScript, so any is an error: a failed load, a blocked
request), no network address in the page, the number of charts Chromium lays out equals the
number of charts in the file (and at least four per experiment), every chart has drawn data
(an element with a non-empty bounding box), and a screenshot is not blank. If Chromium cannot
start, the test fails.

usage: check_report.py HLDLAB SCRIPT OUT_DIR [README_SCREENSHOT]
With HLDLAB_UPDATE_SCREENSHOT=1 in the environment, the screenshot is also copied to
README_SCREENSHOT (the small PNG the README shows).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import zlib

HARNESS = """<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>
<iframe id="f" src="report.html" style="width:1280px;height:900px;border:0"></iframe>
<pre id="result">pending</pre>
<script>
document.getElementById('f').addEventListener('load', () => {
  const doc = document.getElementById('f').contentDocument;
  const out = {charts: 0, empty: [], zero_size: [], sections: 0};
  if (!doc) { document.getElementById('result').textContent = 'no access'; return; }
  out.sections = doc.querySelectorAll('section.experiment').length;
  doc.querySelectorAll('svg.chart').forEach((svg, i) => {
    out.charts++;
    const box = svg.getBoundingClientRect();
    const name = (svg.closest('.card') || svg).querySelector('h4') ?
        svg.closest('.card').querySelector('h4').textContent : 'chart ' + i;
    if (box.width < 50 || box.height < 10) out.zero_size.push(name);
    let drawn = 0;
    svg.querySelectorAll('.data polyline, .data circle, .data rect, .data line').forEach(e => {
      const b = e.getBBox();
      if (b.width > 0 || b.height > 0) drawn++;
    });
    if (drawn === 0) out.empty.push(name);
  });
  document.getElementById('result').textContent = JSON.stringify(out);
});
</script></body></html>
"""


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("FAIL: no Chromium found (install the Debian package `chromium`)")


def run_chromium(args, timeout=120):
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-extensions", "--enable-logging=stderr", "--v=0",
           "--host-resolver-rules=MAP * ~NOTFOUND"] + args
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return p


def png_pixels(path):
    """(width, height, rows of RGBA/RGB bytes) of an 8-bit non-interlaced PNG."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = int.from_bytes(body[0:4], "big"), int.from_bytes(body[4:8], "big")
            depth, ctype, interlace = body[8], body[9], body[12]
            assert depth == 8 and ctype in (2, 6) and interlace == 0, "unexpected PNG format"
            bpp = 4 if ctype == 6 else 3
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(height):
        f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    hldlab, script, out_dir = sys.argv[1:4]
    shot_to = sys.argv[4] if len(sys.argv) > 4 and os.environ.get("HLDLAB_UPDATE_SCREENSHOT") else None
    os.makedirs(out_dir, exist_ok=True)
    report = os.path.join(out_dir, "report.html")
    failures = []

    r = subprocess.run([hldlab, "run", script, "--report", report, "--json",
                        os.path.join(out_dir, "results.json")], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"FAIL: hldlab run exited {r.returncode}: {r.stderr}")
    html = open(report, encoding="utf-8").read()
    experiments = len(json.load(open(os.path.join(out_dir, "results.json")))["experiments"])
    in_file = html.count('<svg class="chart')
    print(f"report: {len(html)} bytes, {experiments} experiments, {in_file} charts in the file")
    if re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html) or "<script" in html:
        failures.append("the report refers to the network or has a script")
    if in_file < 4 * experiments:
        failures.append(f"{in_file} charts for {experiments} experiments (expected >= 4 each)")

    harness = os.path.join(out_dir, "harness.html")
    open(harness, "w").write(HARNESS)
    try:
        p = run_chromium(["--allow-file-access-from-files", "--virtual-time-budget=10000",
                          "--window-size=1300,950", "--dump-dom", "file://" + os.path.abspath(harness)])
    except (OSError, subprocess.TimeoutExpired) as e:
        sys.exit(f"FAIL: Chromium did not run: {e}")
    m = re.search(r'<pre id="result">(.*?)</pre>', p.stdout, re.S)
    if p.returncode != 0 or not m:
        sys.exit(f"FAIL: Chromium did not render the harness (exit {p.returncode}):\n{p.stderr[-3000:]}")
    console = [l for l in p.stderr.splitlines() if ":CONSOLE" in l]
    if console:
        failures.append("console messages:\n  " + "\n  ".join(console))
    text = m.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    if not text.startswith("{"):
        sys.exit(f"FAIL: the harness could not measure the report: {text}")
    got = json.loads(text)
    print(f"chromium: {got['charts']} charts laid out, {got['sections']} experiment sections")
    if got["charts"] != in_file:
        failures.append(f"Chromium laid out {got['charts']} charts, the file has {in_file}")
    if got["sections"] != experiments:
        failures.append(f"{got['sections']} experiment sections for {experiments} experiments")
    if got["empty"]:
        failures.append("charts without data: " + ", ".join(got["empty"]))
    if got["zero_size"]:
        failures.append("charts without size: " + ", ".join(got["zero_size"]))

    # The screenshot: the top of the report at a laptop's size, not blank.
    shot = os.path.join(out_dir, "report.png")
    if os.path.exists(shot):
        os.remove(shot)
    p = run_chromium(["--window-size=1100,760", "--hide-scrollbars", "--force-device-scale-factor=1",
                      "--screenshot=" + shot, "file://" + os.path.abspath(report)])
    if not os.path.exists(shot):
        sys.exit(f"FAIL: Chromium wrote no screenshot (exit {p.returncode}):\n{p.stderr[-3000:]}")
    width, height, bpp, rows = png_pixels(shot)
    colours = set()
    background = rows[0][0:3]
    differing = 0
    for row in rows[::4]:
        for x in range(0, width * bpp, bpp * 4):
            px = row[x:x + 3]
            colours.add(px)
            differing += px != background
    sampled = (height // 4 + 1) * (width // 4 + 1)
    print(f"screenshot: {width}x{height}, {len(colours)} colours, {100 * differing / sampled:.1f}% "
          "of pixels differ from the background")
    if len(colours) < 16 or differing < sampled * 0.02:
        failures.append("the screenshot is blank")
    if shot_to:
        shutil.copyfile(shot, shot_to)
        print(f"screenshot copied to {shot_to}")

    if failures:
        print("FAIL:\n- " + "\n- ".join(failures))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
