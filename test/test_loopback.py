"""The network rule in one place: the loopback-only DDS environment and shm clean-up."""
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from retf_ros.harness.loopback import loopback_environment, profile_path, remove_stale_shm_segments

NS = {"dds": "http://www.eprosima.com"}


def test_environment_selects_the_loopback_profile_and_a_private_domain(tmp_path):
    env = loopback_environment(17, tmp_path, base={"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp", "PATH": "/bin"})
    assert env["FASTDDS_DEFAULT_PROFILES_FILE"] == str(profile_path())
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "SYSTEM_DEFAULT"
    assert env["ROS_DOMAIN_ID"] == "17"
    assert env["ROS_LOG_DIR"] == str(tmp_path)
    assert "RMW_IMPLEMENTATION" not in env and env["PATH"] == "/bin"


@pytest.mark.parametrize("domain", [-1, 102, 250])
def test_unsafe_domain_ids_are_refused(domain):
    with pytest.raises(ValueError, match="ROS_DOMAIN_ID"):
        loopback_environment(domain)


def test_profile_uses_only_shared_memory_and_udp_on_127_0_0_1():
    root = ET.parse(profile_path()).getroot()
    rtps = root.find(".//dds:participant/dds:rtps", NS)
    assert rtps.find("dds:useBuiltinTransports", NS).text == "false"
    used = [t.text for t in rtps.findall("dds:userTransports/dds:transport_id", NS)]
    kinds = {d.find("dds:transport_id", NS).text: d for d in root.findall(".//dds:transport_descriptor", NS)}
    assert sorted(kinds[u].find("dds:type", NS).text for u in used) == ["SHM", "UDPv4"]
    udp = next(kinds[u] for u in used if kinds[u].find("dds:type", NS).text == "UDPv4")
    assert [a.text for a in udp.findall("dds:interfaceWhiteList/dds:address", NS)] == ["127.0.0.1"]
    shm = next(kinds[u] for u in used if kinds[u].find("dds:type", NS).text == "SHM")
    assert int(shm.find("dds:segment_size", NS).text) >= 16 * 1024 * 1024
    peers = [a.text for a in rtps.findall(".//dds:initialPeersList//dds:address", NS)]
    assert peers == ["127.0.0.1"]


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no /dev/shm on this system")
def test_stale_fastdds_segments_are_removed_but_held_ones_kept():
    stale = Path(f"/dev/shm/fastdds_retf_test_stale_{os.getpid()}")
    held = Path(f"/dev/shm/fastdds_retf_test_held_{os.getpid()}")
    stale.write_bytes(b"x")
    held.write_bytes(b"x")
    with held.open("rb"):
        remove_stale_shm_segments()
        assert not stale.exists()
        assert held.exists()
    held.unlink()
