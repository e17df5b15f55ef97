"""Time and peak memory to accept a 5 MiB, 24-megapixel JPEG as a profile photo.

    .venv/bin/python bench/photo_upload.py [--database sqlite|postgresql://...] [--repeat 5]

Makes a 6000x4000 JPEG just under 5 MiB, then, in a fresh process, sends it
through the whole request path (Flask test client: multipart parsing, decode,
orientation, resize, WebP encode, atomic store, database, audit) --repeat times.
Prints the median and worst time per upload, the time of the image work alone,
and the growth of the process's peak RSS during the uploads, after a warm-up
upload (Pillow's pixel buffers are outside Python's allocator, so RSS is what
counts; Linux only, where the peak can be reset).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_BYTES = 5 * 1024 * 1024
SIZE = (6000, 4000)


def make_jpeg() -> bytes:
    """A 24-megapixel JPEG with enough detail to weigh just under 5 MiB (the upload limit)."""
    from PIL import Image

    detail = Image.effect_noise(SIZE, 48)
    gradient = Image.linear_gradient("L").resize(SIZE)
    image = Image.merge("RGB", (detail, gradient, detail.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    best = b""
    for quality in range(95, 20, -2):
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality)
        if out.tell() <= TARGET_BYTES:
            best = out.getvalue()
            break
    return best


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> None:
    """Start a new high-water mark (Linux: writing 5 to clear_refs resets VmHWM)."""
    Path("/proc/self/clear_refs").write_text("5")


def child(path: str, database_url: str, repeat: int) -> None:
    """Runs in a fresh process: the app, one platform admin, and the uploads."""
    from flask_migrate import upgrade
    from werkzeug.datastructures import FileStorage
    from werkzeug.test import encode_multipart

    from admin_api import create_app
    from admin_api.core.security import issue_tokens
    from admin_api.profiles import photos
    from admin_api.users.service import bootstrap_platform_admin

    folder = tempfile.mkdtemp(prefix="bench-photos-")
    app = create_app({"APP_ENV": "testing", "DATABASE_URL": database_url, "UPLOAD_FOLDER": folder,
                      "SECRET_KEY": "bench-secret-key-long-enough-0123456789abcdef",
                      "JWT_SECRET_KEY": "bench-jwt-secret-long-enough-0123456789abcdef", "LOG_LEVEL": "WARNING",
                      "PASSWORD_HASH_TIME_COST": 1, "PASSWORD_HASH_MEMORY_COST": 1024, "PASSWORD_HASH_PARALLELISM": 1})
    with app.app_context():
        upgrade()
        admin = bootstrap_platform_admin(email="bench@example.test", password="bench-password-2026")
        token, admin_id = issue_tokens(admin)["access_token"], admin.id
    data = Path(path).read_bytes()
    client = app.test_client()
    boundary, body = encode_multipart({"photo": FileStorage(io.BytesIO(data), filename="big.jpg")})
    headers = {"Authorization": f"Bearer {token}"}

    def upload() -> float:
        started = time.perf_counter()
        response = client.post(f"/api/v1/users/{admin_id}/profile/photo", headers=headers, data=body,
                               content_type=f"multipart/form-data; boundary={boundary}")
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.get_data(as_text=True)
        return elapsed

    upload()  # warm-up: first-request imports and caches are not the photo's cost
    reset_peak_rss()
    before = _status_mib("VmRSS")
    times = [upload() for _ in range(repeat)]
    peak = _status_mib("VmHWM")
    image_times = []
    for _ in range(repeat):
        started = time.perf_counter()
        photos.process(io.BytesIO(data), max_bytes=len(data), max_pixels=40_000_000)
        image_times.append(time.perf_counter() - started)
    print(json.dumps({"times": times, "image_times": image_times, "rss_before_mib": before, "rss_peak_mib": peak,
                      "stored_files": len(os.listdir(folder))}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="sqlite", help="sqlite (a scratch file) or a postgresql:// URL")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.repeat)
        return
    from common import scratch_database

    data = make_jpeg()
    with tempfile.TemporaryDirectory() as folder, scratch_database(args.database, "bench_photo_upload") as url:
        path = Path(folder) / "big.jpg"
        path.write_bytes(data)
        output = subprocess.run([sys.executable, __file__, "--repeat", str(args.repeat), "--child", str(path), url],
                                check=True, capture_output=True, text=True).stdout
    result = json.loads(output.strip().splitlines()[-1])
    times, image_times = result["times"], result["image_times"]
    print(f"input: {SIZE[0]}x{SIZE[1]} JPEG ({SIZE[0] * SIZE[1] / 1e6:.0f} MP), {len(data) / 1024 / 1024:.2f} MiB")
    print(f"whole upload (HTTP 200): median {statistics.median(times) * 1000:.0f} ms, "
          f"worst {max(times) * 1000:.0f} ms over {len(times)}")
    print(f"image work alone (decode, orient, resize, WebP): median {statistics.median(image_times) * 1000:.0f} ms")
    print(f"peak memory: +{result['rss_peak_mib'] - result['rss_before_mib']:.0f} MiB of RSS during the uploads "
          f"(peak {result['rss_peak_mib']:.0f} MiB, {result['rss_before_mib']:.0f} MiB before)")
    print(f"files in the uploads folder afterwards: {result['stored_files']} (each upload replaced the previous)")


if __name__ == "__main__":
    main()
