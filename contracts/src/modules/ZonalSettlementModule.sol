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
    /// the totals. Otherwise as SettlementModule.verifyChunk, whose body this repeats
    /// with the zones (one shared function put SettlementModule over its size target).
    /// The last `applyChunk` emits ZonePricesSettled.
    function verifyChunkZonal(
        Header calldata h,
        uint64[] calldata zonePrices,
        uint256[] calldata entries,
        OrderAuth[] calldata orders,
        bool last
    ) external onlyRole(ORACLE) {
        Pending storage p = _pending;
        if (entries.length == 0) revert EmptySettlement(h.interval);
        Context memory c = _open(h, p.participants + entries.length);
        _openZones(c, zonePrices);
        uint256 zones = zonePrices.length;
        bytes32 headerHash = keccak256(abi.encode(h, zonePrices));
        if (p.phase == NONE) {
            p.interval = h.interval;
            p.phase = VERIFYING;
            p.headerHash = headerHash;
            p.header = h;
            p.openedAt = uint40(block.timestamp);
            _pendingZonePrices = zonePrices;
        } else if (p.phase != VERIFYING) {
            revert VerificationClosed(h.interval, p.verifiedChunks);
        } else if (p.headerHash != headerHash) {
            revert HeaderMismatch(h.interval, p.headerHash, headerHash);
        } else {
            // The earlier chunks' per-zone sums (a first chunk starts from zero: sums
            // left by an abandoned interval are never read).
            for (uint256 z = 0; z < zones; ++z) {
                c.zoneWh[z] = _pendingZoneWh[z];
            }
        }
        Totals memory t = p.totals;
        uint32 lastParticipant = _checkEntries(c, t, entries, orders, p.lastParticipant, false);
        uint32 chunk = p.verifiedChunks;
        bytes32 entriesHash = _hashEntries(entries);
        _chunkHashes[chunk] = entriesHash;
        if (!last) {
            for (uint256 z = 0; z < zones; ++z) {
                _pendingZoneWh[z] = c.zoneWh[z];
            }
        } else {
            _checkZoneCapacity(c);
            int256 gridAmount = _checkTotals(c, t);
            // slither-disable-next-line unused-return
            _moved(GRID_ID, _accounts[GRID_ID], gridAmount, Move.Settle, c.bucket);
            if (t.storageFee != 0) {
                // slither-disable-next-line unused-return
                _moved(c.storageOperator, _existing(c.storageOperator), t.storageFee, Move.Settle, c.bucket);
            }
            p.phase = APPLYING;
            bytes32 root = bytes32(0);
            for (uint256 i = 0; i <= chunk; ++i) {
                root = keccak256(abi.encodePacked(root, _chunkHashes[i]));
            }
            p.root = root;
        }
        p.totals = t;
        p.verifiedChunks = chunk + 1;
        p.lastParticipant = lastParticipant;
        // At most MAX_ENTRIES (checked by _open).
        p.participants += uint32(entries.length);
        emit ChunkVerified(h.interval, chunk, entries.length, lastParticipant, entriesHash, last);
    }
}
