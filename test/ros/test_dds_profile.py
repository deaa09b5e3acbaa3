"""The camera DDS profile: shipped, well-formed, selected unless the user chose another."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from grounding_agent.ros.dds_profile import (
    PROFILE_VARIABLE,
    camera_profile_path,
    use_camera_profile,
)

NS = {'dds': 'http://www.eprosima.com'}


def test_the_profile_gives_shared_memory_room_for_several_640x480_frames() -> None:
    path = camera_profile_path()
    assert path is not None
    root = ET.parse(path).getroot()
    (shm,) = [
        t
        for t in root.iterfind('.//dds:transport_descriptor', NS)
        if t.findtext('dds:type', namespaces=NS) == 'SHM'
    ]
    assert int(shm.findtext('dds:segment_size', namespaces=NS) or 0) >= 4 * 640 * 480 * 3
    participant = root.find('.//dds:participant', NS)
    assert participant is not None
    assert participant.get('is_default_profile') == 'true'
    used = {t.text for t in participant.iterfind('.//dds:userTransports/dds:transport_id', NS)}
    assert shm.findtext('dds:transport_id', namespaces=NS) in used
    assert len(used) == 2  # shared memory and UDP (other machines still connect)


def test_the_profile_is_selected_when_none_is() -> None:
    environ: dict[str, str] = {}
    assert use_camera_profile(environ) == str(camera_profile_path())
    assert environ[PROFILE_VARIABLE] == str(camera_profile_path())


def test_a_profile_the_user_chose_is_kept() -> None:
    environ = {PROFILE_VARIABLE: '/etc/my_robot/fastdds.xml'}
    assert use_camera_profile(environ) == '/etc/my_robot/fastdds.xml'
    assert environ == {PROFILE_VARIABLE: '/etc/my_robot/fastdds.xml'}
