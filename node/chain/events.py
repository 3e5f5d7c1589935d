"""Decoding of the market's event logs, straight from topics and data.

web3's contract-event wrapper costs ~0.4 ms per log; settlements emit one log per
participant, so the index decodes with eth_abi directly from the ABI instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_hex


@dataclass(frozen=True)
class Event:
    name: str
    args: dict[str, Any]
    block: int
    tx_hash: str
    log_index: int


class EventDecoder:
    """Decodes the logs of one contract ABI; logs of other contracts are skipped."""

    def __init__(self, abi: list[dict], address: str) -> None:
        self.address = address.lower()
        self._events: dict[bytes, tuple[str, list[dict], list[dict]]] = {}
        for entry in abi:
            if entry.get("type") != "event":
                continue
            types = ",".join(arg["type"] for arg in entry["inputs"])
            topic = keccak(text=f"{entry['name']}({types})")
            indexed = [arg for arg in entry["inputs"] if arg["indexed"]]
            plain = [arg for arg in entry["inputs"] if not arg["indexed"]]
            self._events[topic] = (entry["name"], indexed, plain)

    def topic(self, name: str) -> bytes:
        return next(topic for topic, (n, _, _) in self._events.items() if n == name)

    def decode(self, logs: Iterable[dict]) -> list[Event]:
        events = []
        for log in logs:
            if log["address"].lower() != self.address or not log["topics"]:
                continue
            known = self._events.get(bytes(log["topics"][0]))
            if known is None:
                continue
            name, indexed, plain = known
            args = {
                arg["name"]: abi_decode([arg["type"]], bytes(topic))[0]
                for arg, topic in zip(indexed, log["topics"][1:])
            }
            values = abi_decode([arg["type"] for arg in plain], bytes(log["data"]))
            args.update({arg["name"]: value for arg, value in zip(plain, values)})
            tx_hash = log["transactionHash"]
            events.append(
                Event(
                    name=name,
                    args=args,
                    block=int(log["blockNumber"]),
                    tx_hash=to_hex(tx_hash),
                    log_index=int(log["logIndex"]),
                )
            )
        return events
