"""Packing trials onto CPUs and GPUs: how many fit, fractional GPUs sharing a device
(best fit), whole GPUs, requests larger than the machine, releases, and `--gpus` parsing."""

from __future__ import annotations

import pytest

from rlops.api import ResourcesSpec
from rlops.backends.packing import PackingError, Request, Slots, parse_gpus


def fill(slots: Slots, request: Request) -> int:
    count = 0
    while slots.allocate(request) is not None:
        count += 1
    return count


@pytest.mark.parametrize(
    ("resources", "cpus", "fits"),
    [
        (ResourcesSpec(), 4, 4),  # A driver CPU each.
        (ResourcesSpec(env_runners=2), 8, 2),  # 1 + 2 x 1 CPUs.
        (ResourcesSpec(env_runners=2, cpus_per_runner=0.5), 8, 4),
        (ResourcesSpec(driver_cpus=0.5), 3, 6),
    ],
)
def test_trials_fit_by_their_total_cpus(resources: ResourcesSpec, cpus: float, fits: int) -> None:
    assert fill(Slots(cpus), Request.of(resources)) == fits


def test_fractional_gpus_share_a_device_best_fit() -> None:
    slots = Slots(16, (0, 1))
    quarter = Request(cpus=1, gpus=0.25)
    half = Request(cpus=1, gpus=0.5)
    first = slots.allocate(half)
    assert first is not None and first.devices == [0]
    # Best fit: the quarter goes to the fuller device 0, keeping device 1 whole.
    second = slots.allocate(quarter)
    assert second is not None and second.devices == [0]
    whole = slots.allocate(Request(cpus=1, gpus=1))
    assert whole is not None and whole.cuda_visible_devices() == "1"
    assert slots.allocate(half) is None  # Only a quarter of device 0 is left.
    assert slots.allocate(quarter) is not None
    assert slots.allocate(quarter) is None


def test_four_quarter_gpu_trials_share_one_gpu() -> None:
    assert fill(Slots(8, (0,)), Request(cpus=1, gpus=0.25)) == 4


def test_multi_gpu_trials_take_whole_devices() -> None:
    slots = Slots(8, (0, 1, 2))
    two = slots.allocate(Request(cpus=1, gpus=2))
    assert two is not None and two.cuda_visible_devices() == "0,1"
    assert slots.allocate(Request(cpus=1, gpus=2)) is None
    slots.release(two)
    assert slots.allocate(Request(cpus=1, gpus=3)) is not None


def test_release_gives_room_back() -> None:
    slots = Slots(2, (0,))
    a = slots.allocate(Request(cpus=2, gpus=0.5))
    assert a is not None
    assert slots.allocate(Request(cpus=1, gpus=0)) is None
    slots.release(a)
    assert slots.free_cpus == 2 and slots.free_gpus == {0: 1.0}


def test_a_trial_larger_than_the_machine_runs_alone() -> None:
    slots = Slots(2)
    big = slots.allocate(Request(cpus=5, gpus=0))
    assert big is not None and big.cpus == 2
    assert slots.allocate(Request(cpus=1, gpus=0)) is None


def test_cpu_only_trials_hide_the_gpus() -> None:
    allocation = Slots(2, (0,)).allocate(Request(cpus=1, gpus=0))
    assert allocation is not None and allocation.cuda_visible_devices() == ""


@pytest.mark.parametrize(
    ("gpu_ids", "request_", "message"),
    [
        ((), Request(1, 0.5), "pass the devices to use with --gpus"),
        ((0,), Request(1, 2), "needs 2 GPUs; --gpus gives 1"),
        ((0, 1, 2), Request(1, 1.5), "must be a whole number"),
    ],
)
def test_impossible_requests_are_explained(
    gpu_ids: tuple[int, ...], request_: Request, message: str
) -> None:
    with pytest.raises(PackingError, match=message):
        Slots(4, gpu_ids).check(request_, "trial-0")


def test_gpu_ids_are_parsed() -> None:
    assert parse_gpus("0,1") == (0, 1)
    assert parse_gpus("2 3") == (2, 3)
    assert parse_gpus("") == ()
    with pytest.raises(PackingError, match="not a device id"):
        parse_gpus("a")
    with pytest.raises(PackingError, match="twice"):
        parse_gpus("1,1")
