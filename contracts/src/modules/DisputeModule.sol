// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccountWord} from "../lib/AccountWord.sol";
import {MandateWord} from "../lib/MandateWord.sol";
import {SettlementEntry} from "../lib/SettlementEntry.sol";
import {SharedBatteryFees} from "./SharedBatteryFees.sol";

/// @title DisputeModule
/// @notice Meter readings checked optimistically. A settlement is not checked against
/// the meters when it is sent; until it is final, anyone holding a reading signed by a
/// participant's meter key (EIP-712 `Reading`) that the settlement contradicts, or that
/// it left out, can prove it here from the one or two chunks of the interval that show
/// it. That reverses the interval (it may be settled again), pays the disputer from the
/// oracle's bond, and opens a reversal that takes every wallet change of the interval
/// back, one chunk per transaction (`reverseChunk`, anyone may send it), so that an
/// interval of up to MAX_ENTRIES entries can be reversed under the per-transaction gas
/// cap; an interval of one chunk is reversed in the dispute's own transaction.
contract DisputeModule is SharedBatteryFees {
    using SafeERC20 for IERC20;
    using AccountWord for uint256;
    using MandateWord for uint256;

    /// @notice One interval's energy at a participant's connection point, as its meter
    /// signs it (EIP-712, see node/signing.py).
    struct Reading {
        uint32 participant;
        uint64 interval;
        uint64 importWh;
        uint64 exportWh;
    }

    bytes32 private constant READING_TYPEHASH =
        keccak256("Reading(uint32 participant,uint64 interval,uint64 importWh,uint64 exportWh)");
    /// @dev IntervalReversed kinds.
    uint8 internal constant CONTRADICTION = 1;
    uint8 internal constant OMISSION = 2;

    /// @notice The selectors the router sends here.
    function selectors() external pure returns (bytes4[] memory s) {
        s = new bytes4[](12);
        s[0] = this.dispute.selector;
        s[1] = this.reportEquivocation.selector;
        s[2] = this.depositBond.selector;
        s[3] = this.withdrawBond.selector;
        s[4] = this.setDisputeReward.selector;
        s[5] = this.bond.selector;
        s[6] = this.recordOf.selector;
        s[7] = this.pending.selector;
        s[8] = this.chunkHash.selector;
        s[9] = this.reverseChunk.selector;
        s[10] = this.reversal.selector;
        s[11] = this.reversalChunkHash.selector;
    }

    /// @notice Where the pending chunked settlement stands, for an oracle resuming after
    /// a crash: its interval and phase (0 none, 1 verifying, 2 applying), chunks
    /// verified and applied, the chunk count once verification completed (0 before),
    /// the last verified participant and the header hash every chunk must match.
    function pending()
        external
        view
        returns (
            uint64 interval,
            uint8 phase,
            uint32 verifiedChunks,
            uint32 appliedChunks,
            uint32 totalChunks,
            uint32 lastParticipant,
            bytes32 headerHash
        )
    {
        Pending storage p = _pending;
        totalChunks = p.phase == APPLYING ? p.verifiedChunks : 0;
        return (p.interval, p.phase, p.verifiedChunks, p.appliedChunks, totalChunks, p.lastParticipant, p.headerHash);
    }

    /// @notice The hash of verified chunk `chunk` of the pending interval not yet applied
    /// (keccak256 of its packed entry words); zero otherwise.
    function chunkHash(uint256 chunk) external view returns (bytes32) {
        return chunk < _pending.verifiedChunks ? _chunkHashes[chunk] : bytes32(0);
    }

    /// @notice Proves settled interval `interval` wrong with the meter-signed reading `r`
    /// of one participant, before the interval is final, from the chunks it needs.
    /// `chunkHashes` are the hashes of all of the interval's chunks in order (keccak256
    /// of each chunk's packed entry words, as ChunkVerified logged them; one chunk for a
    /// settlement in one transaction): they must hash to the interval's record.
    /// `chunks` are the entry words of chunks `firstChunk`, `firstChunk + 1`, ... (at
    /// least one), each hashing to its `chunkHashes` entry. The dispute holds if the
    /// participant's entry in one of them nets (grid + P2P) to other than import - export
    /// of the reading (a contradiction; an exclusion's declared energy counts), or if it
    /// is in none of them, the chunks show it is in no other chunk, the reading is
    /// nonzero and its mandate in force, set before the settlement's block, covers the
    /// interval (an omission). To show that: the participant is above the first entry of
    /// chunk `firstChunk` (or that is chunk 0) and below the last entry of the last chunk
    /// given (or that is the interval's last): e.g. the chunk it would be in, and if it
    /// falls between two chunks, both. Then the interval is reversed (the oracle may
    /// settle it again), the disputer gets the dispute reward from the oracle's bond (as
    /// far as it goes), and a reversal opens for the chunks that moved money (all of a
    /// closed interval, the applied ones of one still being applied): `reverseChunk`
    /// takes each back. An interval of one chunk given here is reversed at once.
    ///
    /// Invariants: a dispute succeeds only with the interval's own entries (the chunk
    /// hashes chain to its record, each chunk given hashes to its place) and with a
    /// reading that its entry contradicts or that it provably left out; the entries of
    /// every chunk are ascending across chunks (checked when they were verified), so a
    /// participant below a chunk's first entry or above its last is not in it; at most
    /// one reversal is open, and while it is, nothing settles, applies, withdraws or
    /// disputes (ReversalOpen): the money it takes back stays where it was.
    function dispute(
        uint64 interval,
        bytes32[] calldata chunkHashes,
        uint256 firstChunk,
        uint256[][] calldata chunks,
        Reading calldata r,
        bytes calldata signature
    ) external nonReentrant {
        _requireNoReversal();
        uint256 record = _records[interval];
        if (record <= REVERSED) revert NotDisputable(interval);
        Clock memory clock = _clock;
        uint256 settledAt = uint40(record);
        uint256 finalAt = _finalAt(clock, settledAt);
        if (block.timestamp >= finalAt) revert IntervalFinal(interval, finalAt);
        bytes32 root = _root(chunkHashes);
        if (uint256(root) >> 40 != record >> 40) revert EntriesMismatch(interval, root);
        _checkProof(interval, chunkHashes, firstChunk, chunks);
        if (r.interval != interval) revert ReadingForOtherInterval(interval, r.interval);
        // slither-disable-next-line unused-return
        _meterSigned(r, signature);
        uint8 kind = _contradictedOrOmitted(r, chunkHashes.length, firstChunk, chunks)
            ? CONTRADICTION
            : OMISSION;
        if (kind == OMISSION && !_eligible(r.participant, _intervalStart(clock, interval), clock, settledAt)) {
            revert NotEligible(r.participant, interval);
        }
        _records[interval] = REVERSED;
        // An interval still being applied in chunks: only its applied chunks moved money
        // (the grid's side, the storage fees and the share accounts move with the last);
        // the rest is dropped.
        uint256 applied = chunkHashes.length;
        bool closed = true;
        Pending storage p = _pending;
        if (p.phase == APPLYING && p.interval == interval) {
            applied = p.appliedChunks;
            closed = false;
            for (uint256 i = applied; i < p.verifiedChunks; ++i) {
                delete _chunkHashes[i];
            }
            delete _pending;
            delete _pendingZonePrices;
            // Its share entries' energy moves at its close, which never came.
            _dropPendingShareEntries();
        }
        Bond memory b = _bond;
        uint256 reward = b.amount < b.reward ? b.amount : b.reward;
        // reward <= b.amount < 2^128.
        _bond.amount = uint128(b.amount - reward);
        emit IntervalReversed(interval, r.participant, msg.sender, kind, reward);
        _openReversal(interval, chunkHashes, applied, _bucketOf(clock, settledAt), closed);
        // One chunk, given here: reversed at once, so the common case stays one transaction.
        if (applied == 1 && firstChunk == 0) _reverseChunk(interval, 0, chunks[0]);
        if (reward != 0) _token.safeTransfer(msg.sender, reward);
    }

    /// @notice Takes back the wallet changes of chunk `chunk` of the open reversal of
    /// `interval`: `entries` must be exactly the chunk's entry words (its hash as the
    /// dispute stored it). Anyone may send it, for each chunk once, in any order; the
    /// last one also takes back the grid's side (minus the entries' sum, plus the
    /// storage fees it passed on) and closes the reversal.
    ///
    /// Invariants: every chunk that moved money is reversed exactly once (its stored hash
    /// is cleared as it is), with exactly its settled entries; each entry's credit is
    /// unlocked from the bucket it was locked in (no lock can have come since: nothing
    /// settles while the reversal is open); money is conserved to the unit: the grid
    /// moves once, by the sum of every reversed entry, when the last chunk is reversed,
    /// and the share accounts of a closed interval move back entry by entry.
    function reverseChunk(uint64 interval, uint256 chunk, uint256[] calldata entries) external {
        State storage state = _state;
        if (state.reversalLeft == 0 || state.reversalInterval != interval) revert NoReversalOpen(interval);
        _reverseChunk(interval, chunk, entries);
    }

    /// @notice The open reversal: the interval a dispute reversed, its chunks to reverse
    /// (the chunks that moved money), how many are left, whether the interval had closed
    /// (its grid side and storage fees are reversed with the last chunk) and the sum of
    /// the wallet changes reversed so far. All zero when none is open.
    function reversal() external view returns (uint64 interval, uint256 chunks, uint256 left, bool closed, int256 sum) {
        State storage state = _state;
        if (state.reversalLeft == 0) return (0, 0, 0, false, 0);
        Reversal memory rv = _reversal;
        return (state.reversalInterval, rv.chunks, state.reversalLeft, rv.closed, rv.sum);
    }

    /// @notice The hash of chunk `chunk` of the open reversal while it is still to be
    /// reversed (keccak256 of its packed entry words); zero once reversed or if none.
    function reversalChunkHash(uint256 chunk) external view returns (bytes32) {
        return _state.reversalLeft == 0 ? bytes32(0) : _reversalChunkHashes[chunk];
    }

    /// @notice Proves that a participant's meter key signed two different readings of one
    /// interval, which no honest meter does: the participant is frozen (no settlement,
    /// no withdrawal) until the admin has looked into it.
    function reportEquivocation(Reading calldata a, bytes calldata sigA, Reading calldata b, bytes calldata sigB)
        external
    {
        if (
            a.participant != b.participant || a.interval != b.interval
                || (a.importWh == b.importWh && a.exportWh == b.exportWh)
        ) revert NotEquivocation(a.participant);
        address meter = _meterSigned(a, sigA);
        // slither-disable-next-line unused-return
        _meterSigned(b, sigB);
        uint32 id = a.participant;
        _accounts[id] = _accounts[id].withFlag(AccountWord.FROZEN, true);
        emit MeterEquivocated(id, a.interval, meter);
        emit ParticipantFrozen(id, true);
    }

    /// @notice Pays `amount` of the caller's tokens into the oracle's bond.
    function depositBond(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        uint256 total = _bond.amount + amount;
        if (total > type(uint128).max) revert ValueOutOfRange("bond", total, type(uint128).max);
        _bond.amount = uint128(total);
        emit BondChanged(msg.sender, int256(amount), total);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice The oracle takes `amount` of its bond back, once every interval it settled
    /// is final, none is pending and no dispute's reversal is open.
    function withdrawBond(uint256 amount) external onlyRole(ORACLE) nonReentrant {
        if (amount == 0) revert ZeroAmount();
        if (_pending.phase != NONE) revert PendingIntervalOpen(_pending.interval, _pending.phase);
        _requireNoReversal();
        uint256 withdrawableAt = _bondWithdrawableAt();
        if (block.timestamp < withdrawableAt) revert BondLocked(withdrawableAt);
        uint256 held = _bond.amount;
        if (amount > held) revert InsufficientBond(held, amount);
        _bond.amount = uint128(held - amount);
        emit BondChanged(msg.sender, -int256(amount), held - amount);
        _token.safeTransfer(msg.sender, amount);
    }

    /// @notice Sets what a successful dispute pays, which is also the least bond the
    /// oracle must hold to settle.
    function setDisputeReward(uint128 reward) external onlyRole(DEFAULT_ADMIN) {
        _bond.reward = reward;
        emit DisputeRewardSet(reward);
    }

    /// @notice The oracle's bond, the dispute reward, and from when the bond may be withdrawn.
    function bond() external view returns (uint256 amount, uint256 reward, uint256 withdrawableAt) {
        return (_bond.amount, _bond.reward, _bondWithdrawableAt());
    }

    /// @notice Settled interval `interval`'s record: the top 216 bits of its entries root
    /// (low 40 bits zero), when it was settled, from when it is final, and whether a
    /// dispute reversed it (then the rest is zero). All zero if it was never settled.
    function recordOf(uint64 interval)
        external
        view
        returns (bytes32 rootPrefix, uint256 settledAt, uint256 finalAt, bool reversed)
    {
        uint256 record = _records[interval];
        if (record == REVERSED) return (bytes32(0), 0, 0, true);
        if (record == 0) return (bytes32(0), 0, 0, false);
        settledAt = uint40(record);
        return (bytes32(record >> 40 << 40), settledAt, _finalAt(_clock, settledAt), false);
    }

    /// @dev The meter key of `r.participant` in force for `r.interval` signed `r`; returns it.
    function _meterSigned(Reading calldata r, bytes calldata signature) private view returns (address meter) {
        MeterKey[] storage keys = _meterKeys[r.participant];
        uint256 i = keys.length;
        // Keys are few and in order of their first interval: the newest that started.
        while (i > 0 && keys[i - 1].fromInterval > r.interval) --i;
        if (i == 0) revert NoMeterKey(r.participant, r.interval);
        meter = keys[i - 1].key;
        bytes32 structHash = keccak256(abi.encode(READING_TYPEHASH, r.participant, r.interval, r.importWh, r.exportWh));
        address signer = _signer(structHash, signature);
        if (signer != meter) revert BadMeterSignature(r.participant, signer, meter);
    }

    /// @dev The hash chain over the chunks' hashes, as settlement builds it.
    function _root(bytes32[] calldata chunkHashes) private pure returns (bytes32 root) {
        for (uint256 c = 0; c < chunkHashes.length; ++c) {
            root = keccak256(abi.encodePacked(root, chunkHashes[c]));
        }
    }

    /// @dev The chunks a dispute carries are chunks `firstChunk`.. of the interval, at
    /// least one, each with exactly its hashed entries.
    function _checkProof(
        uint64 interval,
        bytes32[] calldata chunkHashes,
        uint256 firstChunk,
        uint256[][] calldata chunks
    ) private pure {
        uint256 count = chunks.length;
        if (count == 0 || firstChunk >= chunkHashes.length || count > chunkHashes.length - firstChunk) {
            revert BadChunkProof(interval, firstChunk, count, chunkHashes.length);
        }
        for (uint256 i = 0; i < count; ++i) {
            bytes32 got = _hashEntries(chunks[i]);
            if (got != chunkHashes[firstChunk + i]) {
                revert ChunkHashMismatch(interval, firstChunk + i, chunkHashes[firstChunk + i], got);
            }
        }
    }

    /// @dev True if the participant's entry in `chunks` contradicts reading `r`; false if
    /// `chunks` prove it is in none of the interval's `total` chunks; reverts otherwise
    /// (NoContradiction, AbsenceNotProved).
    function _contradictedOrOmitted(
        Reading calldata r,
        uint256 total,
        uint256 firstChunk,
        uint256[][] calldata chunks
    ) private pure returns (bool) {
        uint32 id = r.participant;
        uint256 count = chunks.length;
        for (uint256 i = 0; i < count; ++i) {
            (bool found, uint256 index) = _find(chunks[i], id);
            if (!found) continue;
            int256 readWh = int256(uint256(r.importWh)) - int256(uint256(r.exportWh));
            int256 settledWh = SettlementEntry.netWh(chunks[i][index]);
            if (settledWh == readWh) revert NoContradiction(id, settledWh, readWh);
            return true;
        }
        // Not in the chunks given. Entries ascend across chunks, so every entry before
        // chunk `firstChunk` is below its first entry and every entry after the last
        // chunk given is above that one's last: an id strictly between (or beyond the
        // interval's first or last chunk) is in no chunk at all. Only a settlement in one
        // transaction has an empty chunk, its only one, bounded on both sides.
        uint256[] calldata first = chunks[0];
        uint256[] calldata last = chunks[count - 1];
        bool fromStart = firstChunk == 0 || (first.length != 0 && SettlementEntry.participant(first[0]) < id);
        bool toEnd = firstChunk + count == total
            || (last.length != 0 && SettlementEntry.participant(last[last.length - 1]) > id);
        if (!fromStart || !toEnd) revert AbsenceNotProved(id, firstChunk, firstChunk + count - 1);
        if (r.importWh == r.exportWh) revert NotEligible(id, r.interval);
        return false;
    }

    /// @dev Binary search of ascending entries for `participant`.
    function _find(uint256[] calldata entries, uint32 participant) private pure returns (bool, uint256) {
        uint256 low = 0;
        uint256 high = entries.length;
        while (low < high) {
            uint256 mid = (low + high) / 2;
            uint32 id = SettlementEntry.participant(entries[mid]);
            if (id == participant) return (true, mid);
            if (id < participant) low = mid + 1;
            else high = mid;
        }
        return (false, 0);
    }

    /// @dev Whether the oracle had to settle `id` in interval `k`: it is active and not
    /// frozen, and its mandate in force covers the interval and was in force (and the
    /// participant settleable) since before the settlement's block.
    function _eligible(uint32 id, uint256 startsAt, Clock memory clock, uint256 settledAt)
        private
        view
        returns (bool)
    {
        uint256 account = _accounts[id];
        uint256 m = _mandates[id];
        return account.active() && !account.frozen() && m.covers(startsAt, startsAt + clock.intervalSeconds)
            && m.since() < settledAt;
    }

    /// @dev Opens the reversal of `interval`'s first `chunks` chunks (settled in `bucket`;
    /// `closed`: the interval closed). With no chunk (an interval disputed before any
    /// apply cannot be: it has no record) it would close at once; there is always one.
    function _openReversal(
        uint64 interval,
        bytes32[] calldata chunkHashes,
        uint256 chunks,
        uint256 bucket,
        bool closed
    ) private {
        for (uint256 c = 0; c < chunks; ++c) {
            _reversalChunkHashes[c] = chunkHashes[c];
        }
        // chunks <= MAX_CHUNKS (verifyChunk) and a bucket fits 32 bits (State.lastSettledBucket).
        _reversal = Reversal(uint32(chunks), uint32(bucket), closed, 0);
        State storage state = _state;
        state.reversalInterval = interval;
        state.reversalLeft = uint32(chunks);
        emit ReversalOpened(interval, chunks);
    }

    /// @dev Reverses chunk `chunk` of the open reversal of `interval` with `entries`, its
    /// stored hash checked and cleared; the last chunk moves the grid and closes it.
    function _reverseChunk(uint64 interval, uint256 chunk, uint256[] calldata entries) private {
        Reversal memory rv = _reversal;
        if (chunk >= rv.chunks) revert ChunkNotInReversal(interval, chunk, rv.chunks);
        bytes32 expected = _reversalChunkHashes[chunk];
        if (expected == bytes32(0)) revert ChunkAlreadyReversed(interval, chunk);
        bytes32 got = _hashEntries(entries);
        if (got != expected) revert ChunkHashMismatch(interval, chunk, expected, got);
        delete _reversalChunkHashes[chunk];
        int256 sum = 0;
        for (uint256 i = 0; i < entries.length; ++i) {
            uint256 word = entries[i];
            if (SettlementEntry.excluded(word)) continue;
            (uint32 id, int256 amount) = SettlementEntry.participantAndAmount(word);
            uint256 account = _update(id, _accounts[id], -amount, Move.Reverse, rv.bucket);
            // A closed interval moved its shares' accounts (SharedBatteryFees).
            if (rv.closed && account.isShare()) _moveShare(id, SettlementEntry.netWh(word), true);
            // Each amount moved an int72 balance, at most MAX_ENTRIES of them: no overflow.
            unchecked {
                sum += amount;
            }
        }
        emit ChunkReversed(interval, chunk, entries.length, sum);
        State storage state = _state;
        uint32 left = state.reversalLeft - 1;
        // |sum| < 2^87 (Reversal.sum).
        int256 total = rv.sum + sum;
        if (left != 0) {
            state.reversalLeft = left;
            _reversal.sum = int128(total);
            return;
        }
        // The grid's change was minus the entries' sum and the storage fees it passed on;
        // an interval that never closed never moved it.
        int256 gridAmount = 0;
        if (rv.closed) {
            gridAmount = total + _reverseStorageFees(interval, rv.bucket);
            _update(GRID_ID, _accounts[GRID_ID], gridAmount, Move.Reverse, rv.bucket);
        }
        state.reversalLeft = 0;
        state.reversalInterval = 0;
        delete _reversal;
        emit ReversalClosed(interval, gridAmount);
    }

    function _bondWithdrawableAt() private view returns (uint256) {
        return (uint256(_state.lastSettledBucket) + 2) * _clock.disputeWindow;
    }
}
