"""Who is in the sandbox workspace: a cast of five, the people the policy's directory names, and
the channels everyone starts in.

A policy without a directory (no `warroom.toml`) would page nobody, so the sandbox then gives
the cast the functions of the process: bob is on call, carol his backup, dave the tech lead and
erin the manager and everyone above her.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.domain.policy import FUNCTIONS, Directory, Policy
from app.fake_slack import FakeSlack

# (id, name, real name)
CAST = (
    ("UALICE", "alice", "Alice Archer"),
    ("UBOB", "bob", "Bob Baker"),
    ("UCAROL", "carol", "Carol Chen"),
    ("UDAVE", "dave", "Dave Diaz"),
    ("UERIN", "erin", "Erin Evans"),
)
ONCALL_GROUP = "SONCALL"

SANDBOX_DIRECTORY = Directory(
    on_call=[ONCALL_GROUP],
    on_call_backup=["UCAROL"],
    tech_lead=["UDAVE"],
    engineering_manager=["UERIN"],
    engineering_lead=["UERIN"],
    vp_engineering=["UERIN"],
    vp_ops=["UERIN"],
    ceo=["UERIN"],
)
SANDBOX_GROUPS = {ONCALL_GROUP: ("oncall", ["UBOB"])}

LABELS = {
    "on_call": "on call",
    "on_call_backup": "on-call backup",
    "tech_lead": "tech lead",
    "engineering_manager": "engineering manager",
    "engineering_lead": "engineering lead",
    "vp_engineering": "VP Engineering",
    "vp_ops": "VP Operations",
    "ceo": "CEO",
    "specialists": "specialist",
}


@dataclass
class Person:
    id: str
    name: str
    real_name: str
    # What the policy's directory makes them ("on call", "tech lead"…).
    functions: list[str] = field(default_factory=list)


@dataclass
class Group:
    id: str
    handle: str
    members: list[str]


@dataclass
class Cast:
    """Everyone in the sandbox workspace, and the policy that names them."""

    policy: Policy
    people: dict[str, Person]
    groups: dict[str, Group]


def with_directory(policy: Policy) -> Policy:
    """The policy, given the sandbox's directory when it names nobody."""
    if any(getattr(policy.directory, function) for function in FUNCTIONS):
        return policy
    return policy.model_copy(update={"directory": SANDBOX_DIRECTORY})


def cast_for(policy: Policy) -> Cast:
    """The cast plus a person (or a user group with one member) for each directory entry."""
    policy = with_directory(policy)
    people = {uid: Person(uid, name, real) for uid, name, real in CAST}
    groups: dict[str, Group] = {}
    for function in FUNCTIONS:
        label = LABELS[function]
        for slack_id in policy.directory.members([function]):
            if slack_id.startswith("S"):
                group = groups.get(slack_id) or _group(slack_id, function, people)
                groups[slack_id] = group
                for member in group.members:
                    _add_function(people[member], label)
                continue
            if slack_id not in people:
                people[slack_id] = _stranger(slack_id, function, people)
            _add_function(people[slack_id], label)
    return Cast(policy=policy, people=people, groups=groups)


def _add_function(person: Person, label: str) -> None:
    if label not in person.functions:
        person.functions.append(label)


def _group(group_id: str, function: str, people: dict[str, Person]) -> Group:
    if group_id in SANDBOX_GROUPS:
        handle, members = SANDBOX_GROUPS[group_id]
        return Group(group_id, handle, list(members))
    # A group of the policy's own: one member stands in for the rota.
    member_id = "U" + group_id[1:]
    if member_id not in people:
        people[member_id] = _stranger(member_id, function, people)
    handle = function.replace("_", "-")
    return Group(group_id, handle, [member_id])


def _stranger(slack_id: str, function: str, people: dict[str, Person]) -> Person:
    """Someone the policy names by ID only: named after the function they hold."""
    base = function.replace("_", "-")
    taken = {p.name for p in people.values()}
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    return Person(slack_id, name, f"{LABELS[function].capitalize()} ({slack_id})")


def seed(fake: FakeSlack, cast: Cast, channels: list[str]) -> None:
    """Add the people, the user groups and the starting channels (everyone is in them)."""
    for person in cast.people.values():
        fake.add_user(person.id, name=person.name, real_name=person.real_name)
    for group in cast.groups.values():
        fake.add_usergroup(group.id, handle=group.handle, users=group.members)
    everyone = list(cast.people)
    for name in dict.fromkeys(channels):
        if fake.channel_by_name(name) is None:
            fake.add_channel(name, members=everyone)
