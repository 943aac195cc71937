from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import pytest

from framecast.config import Settings
from framecast.engine.base import RenderContext, RenderResult
from framecast.engine.instant import InstantEngine
from framecast.errors import InputError, ModelUnavailableError
from framecast.jobs import Job, JobStatus, JobStore, NewJob
from framecast.schema import TextToVideoInput, TextToVideoOutput
from framecast.storage import LocalStorage
from framecast.worker import Worker, run_worker, user_message
from tests.conftest import SmallDisk
from tests.pg import TempCluster

REPO = Path(__file__).resolve().parents[1]


class FailingEngine(InstantEngine):
    """Renders one step, then raises ``error``: a broken model or an unrenderable request."""

    def __init__(self, error: Exception) -> None:
        super().__init__(steps=1)
        self.error = error

    def render(self, request: TextToVideoInput, ctx: RenderContext, out_path: Path) -> RenderResult:
        super().render(request, ctx, out_path)
        raise self.error


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        public_url="http://testserver",
        lease_seconds=5,
        heartbeat_seconds=0.1,
        poll_seconds=0.02,
    ).resolved()


def submit(store: JobStore, prompt: str = "a red fox in the snow", **kwargs: object) -> Job:
    body = {"prompt": prompt, "resolution": "360p", "seed": 42}
    return store.enqueue(NewJob(endpoint="fal-ai/pixverse/v5.5/text-to-video", input=body, **kwargs))  # type: ignore[arg-type]


def wait_for(condition: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def finished(store: JobStore, job_id: str, timeout: float = 15.0) -> Job:
    wait_for(lambda: store.get(job_id).status is JobStatus.COMPLETED, timeout)  # type: ignore[union-attr]
    return store.get(job_id)  # type: ignore[return-value]


def has_log(store: JobStore, job_id: str, text: str) -> bool:
    return any(text in entry.message for entry in store.logs(job_id))


def stored_files(storage: LocalStorage) -> list[Path]:
    return sorted(storage.root.rglob("*.mp4"))


@pytest.fixture
def running_worker(
    settings: Settings, store: JobStore, storage: LocalStorage
) -> Iterator[Callable[..., Worker]]:
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(engine: InstantEngine, worker_settings: Settings = settings) -> Worker:
        worker = Worker(worker_settings, store, storage, engine)
        thread = threading.Thread(target=worker.run, args=(stop,))
        thread.start()
        threads.append(thread)
        return worker

    yield start
    stop.set()
    for thread in threads:
        thread.join()


def test_a_queued_job_is_rendered_stored_and_completed_with_a_valid_output(
    settings: Settings, store: JobStore, storage: LocalStorage
) -> None:
    job = submit(store)
    worker = Worker(settings, store, storage, InstantEngine(steps=3))

    assert worker.run_once()
    assert not worker.run_once()  # nothing left

    done = store.get(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED and done.error is None
    output = TextToVideoOutput.model_validate(done.output)
    assert output.seed == 42 and output.prompt == "a red fox in the snow"
    assert output.video.content_type == "video/mp4"
    key = output.video.url.removeprefix("http://testserver/files/")
    assert output.video.file_name == f"{job.id}-a1.mp4" == key.split("/")[-1]
    path = storage.local_path(key)
    assert path is not None and path.stat().st_size == output.video.file_size
    with av.open(str(path)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 5 * 8
    steps = [e.message for e in store.logs(job.id) if e.message.startswith("step ")]
    assert steps == [
        "step 1/3",
        "step 2/3",
        "step 3/3",
    ]  # once each: the engine logs them, the worker does not
    assert list((settings.data_dir / "work").iterdir()) == []


def test_the_output_says_how_frames_above_the_models_size_were_upscaled(
    settings: Settings, store: JobStore, storage: LocalStorage
) -> None:
    from framecast.engine import create_engine

    # tiny-wan draws 112x64: 360p is above it, and no learned upscaler's weights are at this path
    engine = create_engine(Settings(model="tiny-wan", device="cpu", upscaler_model="/no/such/upscaler"))
    job = submit(store)
    Worker(settings, store, storage, engine).run_once()

    done = store.get(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED
    assert TextToVideoOutput.model_validate(done.output).upscaled == "bicubic"
    assert has_log(store, job.id, "upscale: bicubic from 112x64 to 640x360")


def test_the_request_base_url_is_used_for_the_video_url_when_known(
    settings: Settings, store: JobStore, storage: LocalStorage
) -> None:
    job = submit(store, base_url="https://videos.example.com")

    Worker(settings, store, storage, InstantEngine(steps=1)).run_once()

    assert store.get(job.id).output["video"]["url"].startswith("https://videos.example.com/files/")  # type: ignore[index,union-attr]


def test_cancel_of_a_running_job_stops_it_within_one_step(
    store: JobStore, storage: LocalStorage, running_worker: Callable[..., Worker]
) -> None:
    job = submit(store)
    running_worker(InstantEngine(steps=500, step_seconds=0.02))
    wait_for(lambda: has_log(store, job.id, "step 3/500"))

    store.cancel(job.id)

    cancelled = finished(store, job.id)
    assert (cancelled.error, cancelled.error_type, cancelled.error_status) == (
        "Request cancelled by the user",
        "request_cancelled",
        400,
    )
    messages = [e.message for e in store.logs(job.id)]
    after_cancel = messages[messages.index("Cancellation requested; stopping after the current step.") :]
    assert sum(m.startswith("step ") for m in after_cancel) <= 1
    assert stored_files(storage) == []


def test_cancel_of_a_queued_and_a_running_tiny_wan_job_ends_both_within_one_step(
    settings: Settings, store: JobStore, storage: LocalStorage, running_worker: Callable[..., Worker]
) -> None:
    from dataclasses import replace

    from framecast.engine import engine_options
    from framecast.engine.engine import DiffusersEngine
    from framecast.engine.presets import get_preset

    # The real tiny diffusers model, given enough steps that a cancel lands mid-denoising.
    engine = DiffusersEngine(replace(get_preset("tiny-wan"), steps=400), engine_options(settings))
    engine.load()
    running, queued = submit(store, "the running one"), submit(store, "the queued one")
    running_worker(engine)
    wait_for(lambda: has_log(store, running.id, "step 2/"), timeout=120)

    assert store.cancel(queued.id).value == "CANCELLATION_REQUESTED"
    assert store.cancel(running.id).value == "CANCELLATION_REQUESTED"

    for job in (finished(store, queued.id), finished(store, running.id, timeout=60)):
        assert (job.error_type, job.error_status) == ("request_cancelled", 400)
    messages = [e.message for e in store.logs(running.id)]
    after_cancel = messages[messages.index("Cancellation requested; stopping after the current step.") :]
    assert sum(m.startswith("step ") for m in after_cancel) <= 1
    assert stored_files(storage) == []


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (RuntimeError("CUDA out of memory"), ("RuntimeError: CUDA out of memory", "internal_error", 500)),
        (
            InputError("this prompt cannot be rendered"),
            ("this prompt cannot be rendered", "invalid_input", 422),
        ),
        (ModelUnavailableError("weights went missing"), ("weights went missing", "model_unavailable", 500)),
    ],
)
def test_an_exception_in_the_engine_becomes_the_job_error_with_its_type(
    settings: Settings,
    store: JobStore,
    storage: LocalStorage,
    error: Exception,
    expected: tuple[str, str, int],
) -> None:
    job = submit(store)

    Worker(settings, store, storage, FailingEngine(error)).run_once()

    failed = store.get(job.id)
    assert failed is not None and failed.status is JobStatus.COMPLETED
    assert (failed.error, failed.error_type, failed.error_status) == expected
    assert store.logs(job.id)[-1].level == "ERROR"


def test_a_job_whose_input_does_not_validate_fails_with_422(
    settings: Settings, store: JobStore, storage: LocalStorage
) -> None:
    job = store.enqueue(NewJob(endpoint="e", input={"prompt": "   "}))

    Worker(settings, store, storage, InstantEngine(steps=1)).run_once()

    failed = store.get(job.id)
    assert failed is not None and (failed.error_type, failed.error_status) == ("invalid_input", 422)


def test_an_output_file_with_a_lifecycle_preference_is_deleted_once_expired(
    settings: Settings, store: JobStore, storage: LocalStorage
) -> None:
    expiring, kept = submit(store, file_ttl_seconds=0), submit(store)
    worker = Worker(settings, store, storage, InstantEngine(steps=1))
    worker.run_once()
    worker.run_once()
    assert len(stored_files(storage)) == 2

    worker.housekeeping()

    (left,) = stored_files(storage)
    assert left.name == f"{kept.id}-a1.mp4"
    assert store.expired_files() == []
    assert store.get(expiring.id).status is JobStatus.COMPLETED  # type: ignore[union-attr]


def test_housekeeping_removes_renders_left_by_a_dead_worker_but_not_running_ones(
    settings: Settings, store: JobStore, storage: LocalStorage
) -> None:
    abandoned, running = submit(store), submit(store)
    store.claim("dead-worker", 30)
    store.claim("live-worker", 30)
    store.fail(abandoned.id, 1, "gone", "internal_error", 500)
    work = settings.data_dir / "work"
    work.mkdir()
    for name in (f"{abandoned.id}-a1.mp4", f"{running.id}-a1.mp4", f"{running.id}-a0.mp4"):
        (work / name).write_bytes(b"partial")

    Worker(settings, store, storage, InstantEngine()).housekeeping()

    assert [p.name for p in work.iterdir()] == [f"{running.id}-a1.mp4"]


def test_a_worker_that_lost_its_lease_stops_and_cannot_write_a_result(
    settings: Settings, store: JobStore, storage: LocalStorage, running_worker: Callable[..., Worker]
) -> None:
    job = submit(store)
    running_worker(InstantEngine(steps=500, step_seconds=0.02))
    wait_for(lambda: has_log(store, job.id, "step 2/500"))

    # The worker stalls past its lease (simulated), the reaper requeues the job, another worker claims it.
    def take_over() -> bool:
        store.heartbeat(job.id, 1, -1.0)
        return store.reap() == 1

    wait_for(take_over)
    thief = store.claim("another-worker", 60)
    assert thief is not None and thief.attempt == 2

    time.sleep(0.5)  # several heartbeats: the first worker must have noticed and stopped by now
    steps_seen = len([e for e in store.logs(job.id) if e.message.startswith("step ")])
    time.sleep(0.2)
    assert len([e for e in store.logs(job.id) if e.message.startswith("step ")]) == steps_seen
    current = store.get(job.id)
    assert current is not None
    assert (current.status, current.attempt, current.worker_id) == (
        JobStatus.IN_PROGRESS,
        2,
        "another-worker",
    )
    assert stored_files(storage) == []


def test_run_worker_serves_jobs_until_its_stop_event_is_set(settings: Settings, store: JobStore) -> None:
    stop = threading.Event()
    thread = threading.Thread(
        target=run_worker,
        args=(settings,),
        kwargs={"engine_factory": lambda s: InstantEngine(steps=2), "stop": stop},
    )
    thread.start()
    try:
        jobs = [submit(store, f"clip {i}") for i in range(3)]
        for job in jobs:
            assert finished(store, job.id).error is None
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()


def test_stopping_a_worker_mid_render_puts_the_job_back_in_the_queue(
    settings: Settings, store: JobStore
) -> None:
    stop = threading.Event()
    engine = InstantEngine(steps=500, step_seconds=0.02)
    thread = threading.Thread(
        target=run_worker, args=(settings,), kwargs={"engine_factory": lambda s: engine, "stop": stop}
    )
    thread.start()
    job = submit(store)
    wait_for(lambda: has_log(store, job.id, "step 2/500"))

    stop.set()
    thread.join(timeout=5)

    assert not thread.is_alive()
    requeued = store.get(job.id)
    assert requeued is not None and requeued.status is JobStatus.IN_QUEUE
    assert store.queue_position(job.id) == 0


class MissingWeightsEngine(InstantEngine):
    def load(self) -> None:
        raise ModelUnavailableError("the weights of tiny-wan are not in /models; run `framecast models pull`")


def test_missing_model_weights_stop_the_worker_with_one_sentence_and_a_non_zero_exit(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_worker(settings, engine_factory=lambda s: MissingWeightsEngine())

    assert exit_info.value.code == 1
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        "the weights of tiny-wan are not in /models; run `framecast models pull`"
    ]


# The kill -9 test runs on the instant engine (many jobs, fast) and on the real tiny diffusers model, whose
# worker process loads torch and diffusers like a production worker does.

WORKER_PROCESS = """
import logging, sys
from framecast.config import Settings
from framecast.worker import run_worker
logging.basicConfig(level=logging.INFO)
settings = Settings.from_env()
if settings.model == "instant":
    from framecast.engine.instant import InstantEngine
    engine = InstantEngine(steps=int(sys.argv[1]), step_seconds=float(sys.argv[2]))
    run_worker(settings, engine_factory=lambda settings: engine)
else:
    run_worker(settings)
"""


def start_worker_process(
    data_dir: Path, model: str, steps: int = 0, step_seconds: float = 0.0
) -> subprocess.Popen:
    lease = "1" if model == "instant" else "3"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "FRAMECAST_DATA_DIR": str(data_dir),
        "FRAMECAST_MODEL": model,
        "FRAMECAST_LEASE_SECONDS": lease,
        "FRAMECAST_HEARTBEAT_SECONDS": "0.2",
        "FRAMECAST_POLL_SECONDS": "0.05",
    }
    with (data_dir / f"worker-{time.monotonic_ns()}.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-c", WORKER_PROCESS, str(steps), str(step_seconds)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.parametrize("model", ["instant", "tiny-wan"])
def test_a_worker_killed_mid_render_loses_nothing_and_the_job_completes_exactly_once(
    settings: Settings, store: JobStore, storage: LocalStorage, model: str
) -> None:
    timeout = 30 if model == "instant" else 180
    victim = submit(store, "the job being rendered", webhook_url="http://127.0.0.1:9/hook")
    others = [submit(store, f"queued {i}") for i in range(3 if model == "instant" else 1)]
    first = start_worker_process(settings.data_dir, model, steps=200, step_seconds=0.05)
    try:
        wait_for(lambda: has_log(store, victim.id, "step 2/"), timeout=timeout)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert store.get(victim.id).status is JobStatus.IN_PROGRESS  # type: ignore[union-attr]

    second = start_worker_process(settings.data_dir, model, steps=2)
    try:
        results = [finished(store, job.id, timeout) for job in (victim, *others)]
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0  # a graceful stop

    assert all(job.error is None for job in results)
    assert [job.attempt for job in results] == [2] + [1] * len(others)
    assert sorted(f.name for f in stored_files(storage)) == sorted(
        f"{job.id}-a{job.attempt}.mp4" for job in results
    )
    messages = [e.message for e in store.logs(victim.id)]
    assert sum("back in the queue" in m for m in messages) == 1
    delivery = store.claim_webhook("check", 30)
    assert delivery is not None and delivery.job.id == victim.id
    assert store.claim_webhook("check", 30) is None  # one result, one webhook


# -- faults: the database going away, a full disk, a crash between storing and completing -------------------


def test_a_postgresql_restart_mid_render_is_ridden_out_and_the_render_completes(
    postgres_cluster: TempCluster, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url=postgres_cluster.url,
        public_url="http://testserver",
        heartbeat_seconds=0.2,
        poll_seconds=0.02,
        store_retry_seconds=60,
    ).resolved()
    store = JobStore.from_settings(settings)
    stop = threading.Event()
    engine = InstantEngine(steps=80, step_seconds=0.05)
    thread = threading.Thread(
        target=run_worker, args=(settings,), kwargs={"engine_factory": lambda s: engine, "stop": stop}
    )
    try:
        job = submit(store)
        thread.start()
        wait_for(lambda: has_log(store, job.id, "step 5/80"))

        postgres_cluster.stop_server()  # mid-render: heartbeats, step logs and cancel checks all fail now
        time.sleep(3)
        postgres_cluster.start()

        done = finished(store, job.id, timeout=60)

        # A second outage while the worker idles (claims, housekeeping, LISTEN all fail for a while).
        postgres_cluster.stop_server()
        time.sleep(2)
        postgres_cluster.start()
        after = finished(store, submit(store, "after the outages").id, timeout=60)
    finally:
        stop.set()
        thread.join(timeout=30)
        store.close()

    assert done.error is None, done.error
    assert (done.attempt, done.crashes) == (1, 0)  # the same attempt carried on: no work was thrown away
    assert after.error is None
    worker_records = [r for r in caplog.records if r.name.startswith("framecast")]
    outages = [r.getMessage() for r in worker_records if "database is unreachable" in r.getMessage()]
    assert len(outages) == 2, outages  # one line per outage, not one per call
    listen = [
        r.getMessage() for r in worker_records if "LISTEN" in r.getMessage() and "failed" in r.getMessage()
    ]
    assert len(listen) <= 2, listen
    assert not [r for r in worker_records if r.exc_info], "no tracebacks for a transient outage"


def test_a_render_on_a_full_disk_fails_saying_so_without_naming_a_path(
    small_disk: SmallDisk, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=small_disk.path,  # the work folder and the stored files
        database_url=f"sqlite:///{tmp_path / 'framecast.db'}",  # the database has room to record the failure
        public_url="http://testserver",
        heartbeat_seconds=0.1,
        poll_seconds=0.02,
    ).resolved()
    store = JobStore.from_settings(settings)
    storage = LocalStorage(small_disk.path / "files")
    worker = Worker(settings, store, storage, InstantEngine(steps=1))
    try:
        job = submit(store)
        small_disk.fill()
        assert worker.run_once()
        failed = store.get(job.id)

        small_disk.free()
        again = submit(store)
        assert worker.run_once()
        recovered = store.get(again.id)
        logs = " ".join(e.message for e in store.logs(job.id))
    finally:
        store.close()

    assert failed is not None and failed.status is JobStatus.COMPLETED
    assert failed.error == "The server has no space left on device; try again later"
    assert (failed.error_type, failed.error_status) == ("insufficient_storage", 507)
    assert str(small_disk.path) not in logs and "/" not in failed.error
    assert recovered is not None and recovered.error is None


def test_a_worker_killed_between_storing_and_completing_leaves_no_file_behind(
    settings: Settings, store: JobStore, storage: LocalStorage
) -> None:
    # What a kill -9 at that moment leaves: the file recorded (pending) and stored, the job still running.
    job = submit(store)
    claimed = store.claim("dead-worker", 30)
    assert claimed is not None
    source = settings.data_dir / "render.mp4"
    source.write_bytes(b"a video")
    store.record_file(job.id, claimed.attempt, "tok/left-behind.mp4", None)
    storage.put("tok/left-behind.mp4", source, "video/mp4")
    expire_lease(store, job.id, claimed.attempt)

    worker = Worker(settings, store, storage, InstantEngine(steps=1))
    worker.housekeeping()  # a live lease would keep the file; this one expired, the job goes back in line
    assert worker.run_once()

    done = store.get(job.id)
    assert done is not None and done.error is None and done.attempt == 2
    (kept,) = stored_files(storage)
    assert kept.name == f"{job.id}-a2.mp4"  # the completed attempt's file, and only it
    assert storage.local_path("tok/left-behind.mp4") is None
    assert store.orphan_files() == []


def expire_lease(store: JobStore, job_id: str, attempt: int) -> None:
    assert store.heartbeat(job_id, attempt, -1.0)


def test_an_os_error_in_a_job_error_gives_its_reason_but_not_its_path() -> None:
    error = FileNotFoundError(2, "No such file or directory", "/srv/framecast/data/work/x.mp4")
    assert user_message(error) == "FileNotFoundError: No such file or directory"
