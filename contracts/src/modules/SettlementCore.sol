// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TermsWord} from "../lib/TermsWord.sol";
import {EntryChecks} from "./EntryChecks.sol";

/// @title SettlementCore
/// @notice What SettlementModule and ZonalSettlementModule share: opening an interval,
/// its totals and closing it.
abstract contract SettlementCore is EntryChecks {
    /// @dev The checks before any entry: no dispute's reversal is open, the interval is
    /// the next one (or a reversed one settled again) and has ended, at most MAX_ENTRIES
    /// entries, the oracle's bond covers a dispute; and the prices of the interval from
    /// the terms in force.
    function _open(Header calldata h, uint256 entries) internal view returns (Context memory c) {
        _requireNoReversal();
        uint64 k = h.interval;
        uint64 next = _state.nextInterval;
        if (k != next && (k > next || _records[k] != REVERSED)) revert IntervalOutOfOrder(next, k);
        if (k >= type(uint32).max) revert ValueOutOfRange("interval", k, type(uint32).max - 1);
        if (entries > MAX_ENTRIES) revert TooManyEntries(k, entries, MAX_ENTRIES);
        Bond memory bond = _bond;
        if (bond.amount < bond.reward) revert BondTooLow(bond.amount, bond.reward);
        c = _context(h);
        if (block.timestamp < c.endsAt) revert IntervalNotEnded(k, c.endsAt, block.timestamp);
        uint256 maxPrice = c.importPrice > c.p2pFee ? c.importPrice - c.p2pFee : 0;
        if (h.p2pPrice < c.exportPrice || h.p2pPrice > maxPrice) {
            revert PriceOutOfRange(h.p2pPrice, c.exportPrice, maxPrice);
        }
    }

    /// @dev A zonal settlement's prices: 1 to MAX_ZONES of them, each within the same
    /// bounds as the uniform price, under uniform-price terms; opens the per-zone sums.
    function _openZones(Context memory c, uint64[] memory zonePrices) internal pure {
        uint256 zones = zonePrices.length;
        if (zones == 0 || zones > MAX_ZONES) revert ZoneCountOutOfRange(zones, MAX_ZONES);
        if (c.payAsBid) revert ZonalUnderPayAsBid(c.interval);
        uint256 maxPrice = c.importPrice > c.p2pFee ? c.importPrice - c.p2pFee : 0;
        for (uint256 z = 0; z < zones; ++z) {
            uint256 price = zonePrices[z];
            if (price < c.exportPrice || price > maxPrice) {
                revert ZonePriceOutOfRange(uint16(z), price, c.exportPrice, maxPrice);
            }
        }
        c.zonePrices = zonePrices;
        c.zoneWh = new uint256[](zones);
    }

    /// @dev Each zone's grid import and export within the zone's capacity.
    function _checkZoneCapacity(Context memory c) internal view {
        uint256 zones = c.zonePrices.length;
        for (uint256 z = 0; z < zones; ++z) {
            (uint256 importCap, uint256 exportCap) = _zoneCapacityOf(c.interval, uint16(z), c.clock);
            uint256 wh = c.zoneWh[z];
            if (wh >> 128 > importCap) revert ZoneImportCapacityExceeded(c.interval, uint16(z), wh >> 128, importCap);
            if (uint128(wh) > exportCap) revert ZoneExportCapacityExceeded(c.interval, uint16(z), uint128(wh), exportCap);
        }
    }

    /// @dev The body of verifyChunk and verifyChunkZonal once the context is open: the
    /// first chunk opens the pending interval under `headerHash`, every later one must
    /// carry the same; checks the entries, keeps the chunk's hash and the running totals;
    /// the last checks the interval's totals, and the grid's and storage operator's
    /// wallet changes against their credit (moving nothing), and fixes the root. The
    /// callers open the context themselves (`_open` with the pending entries counted):
    /// behind a shared function that cost the uniform path ~500 gas a chunk.
    function _verifyChunk(
        Context memory c,
        Header calldata h,
        bytes32 headerHash,
        uint256[] calldata entries,
        OrderAuth[] calldata orders,
        bool last
    ) internal {
        if (entries.length > MAX_CHUNK_ENTRIES) revert ChunkTooLarge(h.interval, entries.length, MAX_CHUNK_ENTRIES);
        Pending storage p = _pending;
        if (p.phase == NONE) {
            p.interval = h.interval;
            p.phase = VERIFYING;
            p.headerHash = headerHash;
            p.header = h;
            p.openedAt = uint40(block.timestamp);
        } else if (p.phase != VERIFYING) {
            revert VerificationClosed(h.interval, p.verifiedChunks);
        } else if (p.headerHash != headerHash) {
            revert HeaderMismatch(h.interval, p.headerHash, headerHash);
        }
        Totals memory t = p.totals;
        uint32 lastParticipant = _checkEntries(c, t, entries, orders, p.lastParticipant, false);
        uint32 chunk = p.verifiedChunks;
        if (chunk >= MAX_CHUNKS) revert TooManyChunks(h.interval, chunk + 1, MAX_CHUNKS);
        bytes32 entriesHash = _hashEntries(entries);
        _chunkHashes[chunk] = entriesHash;
        if (last) {
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

    /// @dev The interval's prices and terms.
    function _context(Header memory h) internal view returns (Context memory c) {
        c.clock = _clock;
        c.interval = h.interval;
        c.startsAt = _intervalStart(c.clock, h.interval);
        c.endsAt = c.startsAt + c.clock.intervalSeconds;
        uint256 terms;
        (terms, c.importPrice, c.exportPrice) = _termsOf(c.clock, h.interval, h.termsIndex);
        c.p2pPrice = h.p2pPrice;
        c.p2pFee = TermsWord.p2pFee(terms);
        c.payAsBid = TermsWord.payAsBid(terms);
        c.storageFee = TermsWord.storageFee(terms);
        c.storageOperator = TermsWord.storageOperator(terms);
        c.bucket = _bucketOf(c.clock, block.timestamp);
    }

    /// @dev Conservation of energy and money over the whole interval, and capacity;
    /// returns the grid's wallet change: minus the entries' sum, which must be within a
    /// unit of what the terms give it.
    function _checkTotals(Context memory c, Totals memory t) internal view returns (int256 gridAmount) {
        uint64 k = c.interval;
        if (t.p2pWh != 0) revert P2PEnergyNotConserved(k, t.p2pWh);
        gridAmount = -t.amount;
        // Sums of int48 x uint32 products and of int128 amounts: no overflow.
        unchecked {
            int256 gridError = gridAmount * 1000 - t.gridExpectedMilli;
            if (gridError <= -1000 || gridError >= 1000) revert PaymentMismatch(GRID_ID, gridAmount, t.gridExpectedMilli);
            // A negative spread would be paid out of the grid's wallet.
            int256 spreadMilli = _spreadMilli(c, t);
            if (spreadMilli < 0) revert NegativeSpread(k, spreadMilli);
        }
        (uint256 importCap, uint256 exportCap) = _capacityOf(k, c.clock);
        if (t.importWh > importCap) revert ImportCapacityExceeded(k, t.importWh, importCap);
        if (t.exportWh > exportCap) revert ExportCapacityExceeded(k, t.exportWh, exportCap);
    }

    /// @dev What the grid gets beyond the tariffs of its energy and the fees: what P2P
    /// buyers paid minus what P2P sellers got. Zero at one price, the spread under
    /// pay-as-bid, the congestion rent Σ p2pWh × zone price at zone prices.
    function _spreadMilli(Context memory c, Totals memory t) internal pure returns (int256) {
        // Sums of int48 x uint32 products and of int128 amounts: no overflow.
        unchecked {
            return t.gridExpectedMilli - int256(t.importWh * c.importPrice) + int256(t.exportWh * c.exportPrice)
                - t.feeMilli;
        }
    }

    /// @dev Moves the grid's wallet and the storage operator's, records the interval and
    /// emits IntervalSettled.
    function _close(
        Context memory c,
        Header memory h,
        int256 gridAmount,
        Totals memory t,
        bytes32 root,
        uint256 participants,
        uint256 settledAt
    ) internal {
        uint64 k = h.interval;
        _update(GRID_ID, _accounts[GRID_ID], gridAmount, Move.Settle, c.bucket);
        _payStorageFees(k, c.storageOperator, t.storageFee, c.bucket);
        _records[k] = (uint256(root) >> 40 << 40) | settledAt;
        State storage state = _state;
        if (k == state.nextInterval) state.nextInterval = k + 1;
        // The bond stays until every settled interval is final (DisputeModule.withdrawBond).
        state.lastSettledBucket = uint32(c.bucket);
        emit IntervalSettled(
            k,
            h.inputsHash,
            c.importPrice,
            c.exportPrice,
            c.p2pPrice,
            c.p2pFee,
            t.importWh,
            t.exportWh,
            gridAmount,
            participants,
            c.payAsBid,
            root,
            _finalAt(c.clock, settledAt)
        );
    }
}
