// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccountWord} from "../lib/AccountWord.sol";
import {SettlementEntry} from "../lib/SettlementEntry.sol";
import {ShareEntryCheck} from "./EntryChecks.sol";
import {SettlementCore} from "./SettlementCore.sol";

/// @title SettlementModule
/// @notice Settles market intervals: in one transaction (`settle`) or, for an interval
/// too big for one, in chunks (`verifyChunk` then `applyChunk`). Zonal settlements
/// (one P2P price per zone) enter through ZonalSettlementModule.
contract SettlementModule is SettlementCore {
    using AccountWord for uint256;

    /// @notice The selectors the router sends here.
    function selectors() external pure returns (bytes4[] memory s) {
        // pending() and chunkHash() are served by DisputeModule (moved there while this module
        // was over its size target).
        s = new bytes4[](4);
        s[0] = this.settle.selector;
        s[1] = this.verifyChunk.selector;
        s[2] = this.applyChunk.selector;
        s[3] = this.abandonPending.selector;
    }

    /// @notice Settles interval `h.interval`: checks every entry, its authorisation and
    /// the totals against the terms in force, then moves the wallets. `entries` are
    /// SettlementEntry words in ascending participant order, the grid (participant 0)
    /// excluded: its side is minus the entries' sum. An entry flagged as authorised by
    /// an order takes the next of `orders` (signed for this interval, in entry order);
    /// any other entry is authorised by the participant's mandate. Every order must be
    /// used. An interval in which nobody traded settles with no entries.
    ///
    /// Trust model. The oracle relays; it is trusted with nothing it could use to move a
    /// participant's money beyond what that participant signed:
    /// - Prices are not the oracle's: the tariffs, the P2P fee and the pricing rule
    ///   (uniform or pay-as-bid) are read from the terms in storage, which the grid
    ///   operator or admin scheduled at least the notice period before the interval
    ///   started. Every entry, and the grid's wallet, is priced from them (to within a
    ///   unit of rounding); the grid's side is minus the others' sum, so it moves only
    ///   by the terms. The oracle chooses only the uniform P2P price, between the export
    ///   tariff and the import tariff less the fee, and only within each participant's
    ///   signed limits.
    /// - Storage fees (SharedBatteryFees): a share participant's entry also pays the
    ///   terms' storage fee on the energy it takes in, whole units per entry; the
    ///   interval's fees go to the terms' storage operator, never to the oracle's choice.
    ///   The energy each account can deliver stays within its share (SharedBatteryFees:
    ///   ShareEnergyOutOfRange). Whether the accounts stay within their battery's power is checked by
    ///   auditors against the committed inputs, like batteries' state of charge.
    /// - Authorisation is checked here: each entry's order (signature by the owner for
    ///   this interval, not cancelled, not expired, side, energy, limit) or mandate (in
    ///   force for this interval, energy per interval, price limits).
    /// - Time: an interval settles only after it has ended by the chain's clock, in
    ///   order, once (again only after a dispute reversed it).
    /// - Solvency: a debit may use only final funds plus the credit limit the admin set
    ///   within the reserve; credits stay locked until final; the grid's wallet too.
    /// - Energy is NOT checked here against the meters (an ecrecover per entry would
    ///   cost ~3k gas): it is checked optimistically. The entries hash into the
    ///   interval's record; until the interval is final (1-2 dispute windows after
    ///   settlement) anyone may submit a meter-signed reading that contradicts an entry,
    ///   or a nonzero one of a participant with a mandate in force who was left out
    ///   without a declared, checked exclusion (DisputeModule.dispute). That reverses the
    ///   whole interval (chunk by chunk, DisputeModule.reverseChunk; nothing settles until
    ///   every chunk is reversed) and pays the disputer from the oracle's bond; the oracle
    ///   must then settle it again. Battery state-of-charge bounds of mandates are checked by
    ///   auditors against the committed inputs, not here.
    /// - Zones (settleZonal, verifyChunkZonal): the oracle chooses one P2P price per
    ///   zone, each between the export tariff and the import tariff less the fee; every
    ///   entry's P2P energy is priced at the price of its participant's zone as stored
    ///   on chain (AccountWord.zone, set by the admin), under its mandate or order; each
    ///   zone's grid import and export stay within the capacity the grid operator set
    ///   for the zone. What buyers pay beyond what sellers get (the congestion rent) goes
    ///   to the grid's wallet and may not be negative (NegativeSpread). Line flows of a
    ///   meshed network are NOT checked here (they are PTDF arithmetic over every zone's
    ///   injection): auditors recompute them from the settled energies against the
    ///   limits of the network committed in the inputs.
    /// What the oracle can still do: choose the uniform P2P price (or the zone prices)
    /// within everyone's limits; delay settlement; leave a participant out when the terms, its mandate or
    /// its credit do not allow settling its metered energy at the grid's price; settle
    /// wrong energy that nobody disputes within the window (an auditor re-runs every
    /// clearing from the committed inputs and the meter-signed readings).
    function settle(Header calldata h, uint256[] calldata entries, OrderAuth[] calldata orders)
        external
        onlyRole(ORACLE)
    {
        Pending storage p = _pending;
        if (p.phase != NONE) revert PendingIntervalOpen(p.interval, p.phase);
        Context memory c = _open(h, entries.length);
        // Memory structs start zeroed: the running sums begin at 0 on purpose.
        // slither-disable-next-line uninitialized-local
        Totals memory t;
        // slither-disable-next-line unused-return
        _checkEntries(c, t, entries, orders, GRID_ID, true);
        int256 gridAmount = _checkTotals(c, t);
        bytes32 root = keccak256(abi.encodePacked(bytes32(0), _hashEntries(entries)));
        emit EntriesSettled(h.interval, 0, entries);
        _close(c, h, gridAmount, t, root, entries.length, block.timestamp);
    }

    // ---------------------------------------------------------------- chunked settlement
    //
    // An interval too big for one transaction settles in two phases. Verify chunks run
    // every check `settle` runs on their entries and keep the running totals and a hash
    // of each chunk's entries, moving no money; the last one checks the interval's
    // totals. Apply chunks then move the wallets of exactly the verified chunks, in
    // order, once each; anyone may send them. Nothing in them can fail but the hash and
    // the sequence: while an interval is pending, nothing can lower what a verified
    // debit may use (withdrawals and credit-limit cuts wait; disputes never lower it).
    // The first apply chunk records the interval, so it is disputable from then on (a
    // dispute before the last chunk reverses the chunks applied and drops the rest);
    // every chunk locks its credits in the bucket of that first apply.

    /// @notice Verifies the next chunk of interval `h.interval` without moving money. The
    /// first chunk opens the pending interval; every later one carries the identical
    /// header. `entries` continue in ascending participant order after the previous
    /// chunk's; `orders` are the orders of this chunk's order-flagged entries, all used.
    /// With `last`, the interval's totals are checked as `settle` checks them; if they
    /// fail the chunk reverts and the pending interval stays open for `abandonPending`.
    function verifyChunk(Header calldata h, uint256[] calldata entries, OrderAuth[] calldata orders, bool last)
        external
        onlyRole(ORACLE)
    {
        if (entries.length == 0) revert EmptySettlement(h.interval);
        Context memory c = _open(h, _pending.participants + entries.length);
        _verifyChunk(c, h, keccak256(abi.encode(h)), entries, orders, last);
    }

    /// @notice Applies verified chunk `chunkIndex` of the pending `interval`: moves each
    /// entry's wallet. Chunks apply in order, once each, and only with exactly the
    /// entries that were verified (same hash); anyone may send them, so that an interval
    /// the oracle verified always completes. The last one settles the interval. Waits
    /// while a dispute's reversal is open (ReversalOpen).
    function applyChunk(uint64 interval, uint256 chunkIndex, uint256[] calldata entries) external {
        // A reversal's credits are unlocked from their bucket: nothing may lock newer ones first.
        _requireNoReversal();
        Pending storage p = _pending;
        if (p.phase != APPLYING || p.interval != interval) revert NotVerified(interval, p.phase);
        uint32 applied = p.appliedChunks;
        if (chunkIndex != applied) revert ChunkOutOfOrder(interval, applied, chunkIndex);
        bytes32 entriesHash = _hashEntries(entries);
        bytes32 verified = _chunkHashes[chunkIndex];
        if (entriesHash != verified) revert ChunkHashMismatch(interval, chunkIndex, verified, entriesHash);
        delete _chunkHashes[chunkIndex];
        if (applied == 0) {
            p.openedAt = uint40(block.timestamp);
            _records[interval] = (uint256(p.root) >> 40 << 40) | block.timestamp;
        }
        uint256 settledAt = p.openedAt;
        uint256 bucket = _bucketOf(_clock, settledAt);
        uint256 count = entries.length;
        for (uint256 i = 0; i < count;) {
            uint256 word = entries[i];
            if (!SettlementEntry.excluded(word)) {
                (uint32 id, int256 amount) = SettlementEntry.participantAndAmount(word);
                _update(id, _accounts[id], amount, Move.Settle, bucket);
            }
            unchecked {
                ++i;
            }
        }
        emit EntriesSettled(interval, chunkIndex, entries);
        emit ChunkApplied(interval, chunkIndex, count);
        if (applied + 1 < p.verifiedChunks) {
            p.appliedChunks = applied + 1;
            return;
        }
        Header memory h = p.header;
        Totals memory t = p.totals;
        uint256 participants = p.participants;
        bytes32 root = p.root;
        delete _pending;
        uint64[] memory zonePrices = _pendingZonePrices;
        if (zonePrices.length != 0) delete _pendingZonePrices;
        Context memory c = _context(h);
        c.bucket = bucket;
        // A call to the market itself (SharedBatteryModule, which only the market may
        // call), after `delete _pending`: nothing else runs in between.
        // slither-disable-next-line reentrancy-no-eth
        if (_pendingShareEntries.length != 0) ShareEntryCheck(address(this)).applyPendingShareEntries();
        _close(c, h, -t.amount, t, root, participants, settledAt);
        if (zonePrices.length != 0) emit ZonePricesSettled(interval, zonePrices, _spreadMilli(c, t));
    }

    /// @notice Discards the pending interval, e.g. one whose last chunk failed the
    /// totals. Allowed only before any chunk was applied, so no money has moved: to the
    /// oracle at any time, to anyone once the interval has been pending a dispute
    /// window (so that a stalled oracle cannot hold withdrawals back).
    function abandonPending() external {
        Pending storage p = _pending;
        if (p.phase == NONE) revert NoPendingInterval();
        if (p.appliedChunks != 0) revert PendingPartlyApplied(p.interval, p.appliedChunks, p.verifiedChunks);
        if (!_roles[ORACLE][msg.sender]) {
            uint256 abandonableAt = uint256(p.openedAt) + _clock.disputeWindow;
            if (block.timestamp < abandonableAt) revert PendingNotStale(p.interval, abandonableAt);
        }
        emit PendingAbandoned(p.interval, p.headerHash, p.verifiedChunks);
        delete _pending;
        delete _pendingZonePrices;
        _dropPendingShareEntries();
    }
}
