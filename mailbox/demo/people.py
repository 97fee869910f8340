"""Who writes the demo mail: the mailbox's user and ~25 correspondents around them."""

import unicodedata
from dataclasses import dataclass
from email.headerregistry import Address


@dataclass(frozen=True)
class Person:
    name: str
    address: str
    utc_offset: int = 0  # hours; Date headers are written in the sender's zone

    @property
    def first_name(self) -> str:
        return self.name.split()[0]

    @property
    def domain(self) -> str:
        return self.address.rsplit("@", 1)[1]

    @property
    def header(self) -> Address:
        return Address(display_name=self.name, addr_spec=self.address)


@dataclass(frozen=True)
class Cast:
    user: Person
    colleagues: tuple[Person, ...]
    external: tuple[Person, ...]
    friends: tuple[Person, ...]
    team_list: Person


def cast_for(user: Person) -> Cast:
    """~25 correspondents: colleagues on the user's own domain, a client, a partner and friends."""
    own = user.domain
    return Cast(
        user=user,
        colleagues=_people(own, 1, "Priya Raman", "Tomás Oliveira", "Hannah Becker", "Kenji Watanabe")
        + _people(own, 0, "Amara Okafor", "Lukas Novak", "Sofia Marino", "Daniel Cohen"),
        external=_people("brightwave.example", -5, "Grace Liu", "Marcus Reed", "Elena Petrova", "Owen Fitzgerald")
        + _people("harborlabs.example", 2, "Jonas Lindqvist", "Camille Dubois", "Ravi Shah", "Mei Chen"),
        friends=_people("mail.example", 0, "Alex Morgan", "Sam Carter", "Jamie Rivera", "Chloe Martin", "Noah Fischer"),
        team_list=Person("Team discussion", f"team-list@{own}"),
    )


def _people(domain: str, offset: int, *names: str) -> tuple[Person, ...]:
    """Addresses are the ASCII-folded name, so "Tomás Oliveira" writes from tomas.oliveira@."""
    return tuple(Person(name, f"{_ascii(name).lower().replace(' ', '.')}@{domain}", offset) for name in names)


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
