"""``sematic.testing.mock_sematic_funcs`` as Sematic 0.41 documents it, under the silent and
the local resolver."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import sematic
from sematic import LocalResolver, LocalRunner, SilentResolver, SilentRunner
from sematic.testing import SematicFuncMock, mock_sematic_funcs
from tests.pipelines.local import remote_square
from tests.unit.resolvers.conftest import recorded_runs


class ServiceUnavailableError(RuntimeError):
    """What the real code of ``fetch_remote`` raises in a test."""


@sematic.func
def fetch_remote(x: int) -> int:
    """Needs a service tests do not have."""
    raise ServiceUnavailableError(f"no service to fetch {x}")


@sematic.func
def double(x: int) -> int:
    return 2 * x


@sematic.func
def total(values: list[int]) -> int:
    return sum(values)


@sematic.func
def pipeline() -> int:
    return total([fetch_remote(1), fetch_remote(2), double(3)])


@sematic.func(inline=False, cache=True)
def train(x: int) -> int:
    """A worker-process step (in a real run)."""
    return x + 1000


@sematic.func(inline=False)
def pid_of_step(x: int) -> int:
    return os.getpid()


@sematic.func
def local_pipeline(witness: str) -> list[int]:
    return [train(1), train(2), pid_of_step(0), remote_square(3, witness)]


@pytest.mark.parametrize("runner", [SilentResolver().resolve, SilentRunner().run])
def test_return_value_replaces_the_code(runner: object) -> None:
    with mock_sematic_funcs([fetch_remote]) as mocks:
        handle = mocks[fetch_remote]
        assert isinstance(handle, SematicFuncMock)
        handle.mock.return_value = 10
        assert runner(pipeline()) == 10 + 10 + 6  # type: ignore[operator]
    assert handle.mock.call_count == 2
    handle.mock.assert_any_call(x=1)
    handle.mock.assert_any_call(x=2)


def test_side_effect_original_keeps_the_behaviour_and_records_calls() -> None:
    with mock_sematic_funcs([fetch_remote, double]) as mocks:
        mocks[fetch_remote].mock.side_effect = lambda x: x * 100
        mocks[double].mock.side_effect = mocks[double].original
        assert SilentRunner().run(pipeline()) == 100 + 200 + 6
        mocks[double].mock.assert_called_once_with(x=3)
    assert mocks[double].original(4) == 8
    assert mocks[double].signature.parameters["x"].annotation in (int, "int")


def test_a_side_effect_exception_fails_the_pipeline_like_the_code_would() -> None:
    with mock_sematic_funcs([double]) as mocks:
        mocks[double].mock.side_effect = KeyError("boom")
        with pytest.raises(sematic.PipelineRunError, match="double") as raised:
            SilentResolver().resolve(double(1))
    assert isinstance(raised.value.__cause__, KeyError)


def test_mocked_functions_still_check_types_and_return_futures() -> None:
    with mock_sematic_funcs([double]) as mocks:
        mocks[double].mock.return_value = "not an int"
        future = double(1)
        assert isinstance(future, sematic.Future)
        with pytest.raises(sematic.PipelineRunError) as raised:
            SilentRunner().run(future)
        assert isinstance(raised.value.__cause__, TypeError)
        with pytest.raises(sematic.TypeCheckError):
            double("one")  # type: ignore[arg-type]
        mocks[double].mock.return_value = 7
        assert SilentRunner().run(double(1)) == 7  # the default MagicMock was not kept


def test_mocks_only_last_for_the_block_even_when_it_fails() -> None:
    with pytest.raises(ZeroDivisionError), mock_sematic_funcs([fetch_remote]) as mocks:
        mocks[fetch_remote].mock.return_value = 1
        raise ZeroDivisionError
    with pytest.raises(sematic.PipelineRunError) as raised:
        SilentRunner().run(fetch_remote(1))
    assert isinstance(raised.value.__cause__, ServiceUnavailableError)
    assert SilentRunner().run(double(16)) == 32


def test_only_sematic_functions_can_be_mocked() -> None:
    with pytest.raises(ValueError, match="@sematic.func"), mock_sematic_funcs([len]):  # type: ignore[list-item]
        pass
    with pytest.raises(ValueError), mock_sematic_funcs([double, double.fn]):  # type: ignore[list-item]
        pass
    assert SilentRunner().run(double(2)) == 4  # nothing was left mocked


def test_under_local_resolver_mocked_worker_steps_run_in_this_process(
    home: Path, tmp_path: Path
) -> None:
    witness = str(tmp_path / "w")
    assert train.props.inline is False and train.props.cache is True
    with mock_sematic_funcs([train, pid_of_step]) as mocks:
        mocks[train].mock.side_effect = lambda x: x * 10
        mocks[pid_of_step].mock.side_effect = mocks[pid_of_step].original
        future = local_pipeline(witness)
        assert LocalResolver().resolve(future) == [10, 20, os.getpid(), 9]
        assert mocks[train].mock.call_count == 2
        mocks[pid_of_step].mock.assert_called_once_with(x=0)
    assert train.props.inline is False and train.props.cache is True  # restored

    runs = {run.name: run for run in recorded_runs(future.id)}
    assert runs["train"].inline is True  # ran in the resolver, while mocked
    assert runs["remote_square"].inline is False  # not mocked: still a worker process
    assert all(run.state == "RESOLVED" for run in runs.values())


def test_under_local_runner_a_mocked_output_is_not_cached(home: Path, tmp_path: Path) -> None:
    with mock_sematic_funcs([train]) as mocks:
        mocks[train].mock.return_value = -1
        assert LocalRunner().run(train(5)) == -1
    with mock_sematic_funcs([train]) as mocks:
        mocks[train].mock.return_value = -2
        assert LocalRunner().run(train(5)) == -2  # neither stored nor reused
        mocks[train].mock.assert_called_once_with(x=5)


def test_the_041_module_path_works_too() -> None:
    from sematic.testing import mock_funcs

    assert mock_funcs.mock_sematic_funcs is mock_sematic_funcs
    assert mock_funcs.SematicFuncMock is SematicFuncMock
