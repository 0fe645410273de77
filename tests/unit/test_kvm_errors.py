"""The first thing a user without KVM sees: a sentence, not a traceback."""

import os

import pytest

from kvmsentry.vm.kvm import Kvm, KvmUnavailable


def test_missing_device(tmp_path):
    with pytest.raises(KvmUnavailable, match="this machine has no KVM"):
        Kvm(str(tmp_path / "kvm"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root opens any file")
def test_no_permission(tmp_path):
    device = tmp_path / "kvm"
    device.write_bytes(b"")
    device.chmod(0)
    with pytest.raises(KvmUnavailable, match="add your user to group kvm"):
        Kvm(str(device))


def test_not_kvm(tmp_path):
    """A file that answers no KVM ioctl is refused with the reason."""
    device = tmp_path / "kvm"
    device.write_bytes(b"")
    with pytest.raises(KvmUnavailable, match="is not a KVM device"):
        Kvm(str(device))


def test_cli_without_kvm(tmp_path, monkeypatch, capsys):
    """`kvmsentry boot` without KVM: one line, status 125."""
    from kvmsentry import cli
    from kvmsentry.vm import kvm as kvm_module

    monkeypatch.setattr(kvm_module, "KVM_DEVICE", str(tmp_path / "kvm"))
    monkeypatch.setattr(kvm_module.Kvm.__init__, "__defaults__", (str(tmp_path / "kvm"),))
    assert cli.main(["boot", "/bin/true"]) == cli.EXIT_SENTRY_FAILURE
    err = capsys.readouterr().err
    assert err.startswith("kvmsentry: this machine has no KVM")
    assert len(err.strip().splitlines()) == 1
