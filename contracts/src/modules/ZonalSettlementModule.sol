// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {SettlementCore} from "./SettlementCore.sol";

/// @title ZonalSettlementModule
/// @notice Settles intervals of a community on a network at one P2P price per zone
/// (issue 11): in one transaction (`settleZonal`) or in chunks (`verifyChunkZonal`,
/// then SettlementModule.applyChunk). What it checks beyond `settle` and what it does
/// not (line flows) is stated above SettlementModule.settle. A module of its own so
/// that the uniform path's code and gas stay as they were.
contract ZonalSettlementModule is SettlementCore {
    /// @notice The selectors the router sends here.
    function selectors() external pure returns (bytes4[] memory s) {
        s = new bytes4[](2);
        s[0] = this.settleZonal.selector;
        s[1] = this.verifyChunkZonal.selector;
    }

    /// @notice Settles interval `h.interval` like `settle`, with one P2P price per zone:
    /// `zonePrices[z]` (minor units per kWh) prices the P2P energy of every entry whose
    /// participant is in zone z on chain, mandate- or order-authorised alike (the
    /// interval's terms must price uniformly, not pay-as-bid). Every zone of a settled
    /// participant needs a price; at most MAX_ZONES prices. `h.p2pPrice` must still lie
    /// within the tariffs and is the community's reference price (the oracle gives the
    /// lowest zone price); it prices nothing. On top of `settle`'s checks: each zone's
    /// grid import and export within its capacity (`zoneCapacityOf`). Emits
    /// ZonePricesSettled after IntervalSettled.
    function settleZonal(
        Header calldata h,
        uint64[] calldata zonePrices,
        uint256[] calldata entries,
        OrderAuth[] calldata orders
    ) external onlyRole(ORACLE) {
        Pending storage p = _pending;
        if (p.phase != NONE) revert PendingIntervalOpen(p.interval, p.phase);
        Context memory c = _open(h, entries.length);
        _openZones(c, zonePrices);
        // Memory structs start zeroed: the running sums begin at 0 on purpose.
        // slither-disable-next-line uninitialized-local
        Totals memory t;
        // slither-disable-next-line unused-return
        _checkEntries(c, t, entries, orders, GRID_ID, true);
        int256 gridAmount = _checkTotals(c, t);
        _checkZoneCapacity(c);
        bytes32 root = keccak256(abi.encodePacked(bytes32(0), _hashEntries(entries)));
        emit EntriesSettled(h.interval, 0, entries);
        _close(c, h, gridAmount, t, root, entries.length, block.timestamp);
        emit ZonePricesSettled(h.interval, zonePrices, _spreadMilli(c, t));
    }

    /// @notice `verifyChunk` of a zonal settlement (see `settleZonal`): every chunk
    /// carries the identical header and zone prices (their hash together is the pending
    /// header hash, so chunks that disagree on a zone price fail HeaderMismatch); each
    /// zone's grid energy is summed across chunks and checked against its capacity with
    /// the totals. Otherwise as SettlementModule.verifyChunk (SettlementCore._verifyChunk).
    /// The last `applyChunk` emits ZonePricesSettled.
    function verifyChunkZonal(
        Header calldata h,
        uint64[] calldata zonePrices,
        uint256[] calldata entries,
        OrderAuth[] calldata orders,
        bool last
    ) external onlyRole(ORACLE) {
        if (entries.length == 0) revert EmptySettlement(h.interval);
        Context memory c = _open(h, _pending.participants + entries.length);
        _openZones(c, zonePrices);
        uint256 zones = zonePrices.length;
        if (_pending.phase == NONE) {
            _storeZonePrices(c.zonePrices);
        } else {
            // The earlier chunks' per-zone sums (a first chunk starts from zero: sums
            // left by an abandoned interval are never read). A chunk whose header or
            // zone prices differ reads them too, then fails HeaderMismatch.
            for (uint256 z = 0; z < zones; ++z) {
                c.zoneWh[z] = _pendingZoneWh[z];
            }
        }
        _verifyChunk(c, h, keccak256(abi.encode(h, zonePrices)), entries, orders, last);
        if (last) {
            _checkZoneCapacity(c);
        } else {
            for (uint256 z = 0; z < zones; ++z) {
                _pendingZoneWh[z] = c.zoneWh[z];
            }
        }
    }

    /// @dev `_pendingZonePrices = prices`, written as Solidity lays out a uint64[] in
    /// storage (the length in its slot; four prices a word from keccak256(slot), the
    /// first in the low bits), in one plain loop: the compiler's copy of a uint64[] into
    /// storage took 578 bytes of this module, which sits at its size target. The array is
    /// empty here: applyChunk and abandonPending delete it, and only a first chunk (no
    /// pending interval) writes it. `prices` were decoded and range-checked (_openZones).
    function _storeZonePrices(uint64[] memory prices) private {
        uint64[] storage stored = _pendingZonePrices;
        assembly ("memory-safe") {
            let n := mload(prices)
            sstore(stored.slot, n)
            mstore(0, stored.slot)
            let data := keccak256(0, 0x20)
            let word := 0
            for { let z := 0 } lt(z, n) { z := add(z, 1) } {
                word := or(word, shl(mul(64, and(z, 3)), mload(add(prices, mul(add(z, 1), 0x20)))))
                if eq(and(z, 3), 3) {
                    sstore(add(data, shr(2, z)), word)
                    word := 0
                }
            }
            if and(n, 3) { sstore(add(data, shr(2, n)), word) }
        }
    }
}
