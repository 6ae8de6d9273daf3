"""The one stop flag of prend train and prend pretrain: at once in set-up, after the step in the loop, twice at once."""

import os
import signal
import threading

import pytest

from prend.signals import Interrupted, StopFlag


def _send(signum):
    os.kill(os.getpid(), signum)  # delivered to the main thread; Python runs the handler at once here


def test_set_up_stops_at_once_then_the_loop_stops_after_the_step_and_a_second_signal_at_once(capsys):
    before = signal.getsignal(signal.SIGTERM)
    with StopFlag("stopping after this step", deferring=False) as stop:
        with pytest.raises(Interrupted) as err:
            _send(signal.SIGTERM)
        assert err.value.signum == signal.SIGTERM and err.value.name == "SIGTERM" and stop.raised is None
        stop.defer()
        _send(signal.SIGINT)
        assert stop.raised == signal.SIGINT
        assert "stopping after this step" in capsys.readouterr().err
        with pytest.raises(KeyboardInterrupt):  # Interrupted is one: code that stops on Ctrl-C stops here too
            _send(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before  # the handlers are restored


def test_off_the_main_thread_the_flag_leaves_signals_alone():
    seen = []

    def run():
        with StopFlag() as stop:
            seen.append((stop.raised, signal.getsignal(signal.SIGINT)))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen == [(None, signal.getsignal(signal.SIGINT))]
