"""Why an input topic delivers nothing, read from the ROS graph.

DDS matches a subscription only with publishers of the same type name, a compatible definition
and compatible QoS; otherwise the subscription is silent and the node could only say "waiting
for input". :func:`input_problem` looks at the publishers of one input topic and names what
stands in the way: a publisher of another type (a PoseArray where a MarkerArray is expected),
the same type with another type hash (another distro's message definition), or QoS the
subscription cannot match (a best-effort camera and a reliable subscription).
"""
from __future__ import annotations

from rclpy.qos import QoSCompatibility, qos_check_compatible


def _type_hash(endpoint) -> str:
    """RIHS01_<hex> of an endpoint's type hash; "" when the publisher sends none (before Iron)."""
    value = getattr(endpoint, "topic_type_hash", None)
    if value is None or not getattr(value, "version", 0):
        return ""
    return str(value)


def _who(endpoint) -> str:
    return f"{endpoint.node_namespace.rstrip('/')}/{endpoint.node_name}"


def _mismatch(publisher, expected_type: str, expected_hash: str, subscription_qos) -> str | None:
    """What keeps ``publisher`` from reaching the subscription; None when nothing does."""
    if publisher.topic_type != expected_type:
        return f"{_who(publisher)} publishes {publisher.topic_type}, the node expects {expected_type}"
    published_hash = _type_hash(publisher)
    if expected_hash and published_hash != expected_hash:
        return (f"{_who(publisher)} publishes {publisher.topic_type} with type hash {published_hash or 'none'}, "
                f"the node's is {expected_hash} (a message definition of another ROS 2 distro; "
                "replay its bags with `retf bag play`, which converts)")
    compatibility, reason = qos_check_compatible(publisher.qos_profile, subscription_qos)
    if compatibility == QoSCompatibility.ERROR:
        return f"{_who(publisher)} offers incompatible QoS ({reason.strip() or 'see qos.* parameters'})"
    return None


def input_problem(node, subscription) -> str | None:
    """One line naming the topic and what blocks it, or None when a publisher can deliver."""
    topic, expected_type = subscription.topic_name, ros_type_name(subscription.msg_type)
    publishers = node.get_publishers_info_by_topic(topic)
    if not publishers:
        return f"no publisher on {topic} (expects {expected_type})"
    own = [s for s in node.get_subscriptions_info_by_topic(topic)
           if s.node_name == node.get_name() and s.node_namespace == node.get_namespace()]
    expected_hash = _type_hash(own[0]) if own else ""
    mismatches = [_mismatch(p, expected_type, expected_hash, subscription.qos_profile) for p in publishers]
    if any(m is None for m in mismatches):
        return None
    return f"{topic}: " + "; ".join(mismatches)


def input_problems(node, subscriptions) -> list[str]:
    """:func:`input_problem` of every subscription that has one."""
    return [problem for problem in (input_problem(node, s) for s in subscriptions) if problem]


def ros_type_name(message_class) -> str:
    """``pkg/msg/Name`` of a generated message class (e.g. visualization_msgs/msg/MarkerArray)."""
    return f"{message_class.__module__.split('.')[0]}/msg/{message_class.__name__}"
