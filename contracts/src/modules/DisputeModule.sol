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
/// it left out, can prove it here. That reverses every wallet change of the interval,
/// pays the disputer from the oracle's bond, and lets the oracle settle it again.
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
        s = new bytes4[](9);
        s[0] = this.dispute.selector;
        s[1] = this.reportEquivocation.selector;
        s[2] = this.depositBond.selector;
        s[3] = this.withdrawBond.selector;
        s[4] = this.setDisputeReward.selector;
        s[5] = this.bond.selector;
        s[6] = this.recordOf.selector;
        s[7] = this.pending.selector;
        s[8] = this.chunkHash.selector;
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
    /// of one participant, before the interval is final. `entries` are all of the
    /// interval's entry words as EntriesSettled logged them, and `chunkEnds` where each
    /// chunk ended (one chunk: `[entries.length]`); they must hash to the interval's
    /// record. The dispute holds if the participant's entry nets (grid + P2P) to other
    /// than import - export of the reading (a contradiction; an exclusion's declared
    /// energy counts), or if the participant is not among the entries although the
    /// reading is nonzero and its mandate in force, set before the settlement's block,
    /// covers the interval (an omission). Then every wallet change of the interval is reversed,
    /// the disputer gets the dispute reward from the oracle's bond (as far as it goes)
    /// and the oracle may settle the interval again.
    function dispute(
        uint64 interval,
        uint256[] calldata entries,
        uint256[] calldata chunkEnds,
        Reading calldata r,
        bytes calldata signature
    ) external nonReentrant {
        uint256 record = _records[interval];
        if (record <= REVERSED) revert NotDisputable(interval);
        Clock memory clock = _clock;
        uint256 settledAt = uint40(record);
        uint256 finalAt = _finalAt(clock, settledAt);
        if (block.timestamp >= finalAt) revert IntervalFinal(interval, finalAt);
        bytes32 root = _root(entries, chunkEnds);
        if (uint256(root) >> 40 != record >> 40) revert EntriesMismatch(interval, root);
        if (r.interval != interval) revert ReadingForOtherInterval(interval, r.interval);
        // slither-disable-next-line unused-return
        _meterSigned(r, signature);

        (bool found, uint256 index) = _find(entries, r.participant);
        int256 readWh = int256(uint256(r.importWh)) - int256(uint256(r.exportWh));
        uint8 kind;
        if (found) {
            int256 settledWh = SettlementEntry.netWh(entries[index]);
            if (settledWh == readWh) revert NoContradiction(r.participant, settledWh, readWh);
            kind = CONTRADICTION;
        } else {
            if (readWh == 0 || !_eligible(r.participant, _intervalStart(clock, interval), clock, settledAt)) {
                revert NotEligible(r.participant, interval);
            }
            kind = OMISSION;
        }
        _records[interval] = REVERSED;
        // An interval still being applied in chunks: only its applied chunks moved money
        // (the grid's side moves with the last); the rest is dropped.
        Pending storage p = _pending;
        if (p.phase == APPLYING && p.interval == interval) {
            uint256 applied = p.appliedChunks;
            for (uint256 i = applied; i < p.verifiedChunks; ++i) {
                delete _chunkHashes[i];
            }
            delete _pending;
            // Its share entries' energy moves at its close, which never came.
            _dropPendingShareEntries();
            _reverse(interval, entries, chunkEnds[applied - 1], _bucketOf(clock, settledAt), false);
        } else {
            _reverse(interval, entries, entries.length, _bucketOf(clock, settledAt), true);
        }
        Bond memory b = _bond;
        uint256 reward = b.amount < b.reward ? b.amount : b.reward;
        // reward <= b.amount < 2^128.
        _bond.amount = uint128(b.amount - reward);
        emit IntervalReversed(interval, r.participant, msg.sender, kind, reward);
        if (reward != 0) _token.safeTransfer(msg.sender, reward);
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
    /// is final and none is pending.
    function withdrawBond(uint256 amount) external onlyRole(ORACLE) nonReentrant {
        if (amount == 0) revert ZeroAmount();
        if (_pending.phase != NONE) revert PendingIntervalOpen(_pending.interval, _pending.phase);
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
    function _root(uint256[] calldata entries, uint256[] calldata chunkEnds) private pure returns (bytes32 root) {
        uint256 start = 0;
        if (chunkEnds.length == 0) revert BadChunkBounds(0, entries.length);
        for (uint256 c = 0; c < chunkEnds.length; ++c) {
            uint256 end = chunkEnds[c];
            if (end < start || end > entries.length) revert BadChunkBounds(end, entries.length);
            root = keccak256(abi.encodePacked(root, keccak256(abi.encodePacked(entries[start:end]))));
            start = end;
        }
        if (start != entries.length) revert BadChunkBounds(start, entries.length);
    }

    /// @dev Binary search of the ascending entries for `participant`.
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

    /// @dev Takes back the wallet changes of the first `end` entries of a settled
    /// interval and, with `grid`, the grid's.
    function _reverse(uint64 interval, uint256[] calldata entries, uint256 end, uint256 bucket, bool grid)
        private
    {
        int256 sum = 0;
        for (uint256 i = 0; i < end; ++i) {
            uint256 word = entries[i];
            if (SettlementEntry.excluded(word)) continue;
            (uint32 id, int256 amount) = SettlementEntry.participantAndAmount(word);
            uint256 account = _update(id, _accounts[id], -amount, Move.Reverse, bucket);
            // A closed interval moved its shares' accounts (SharedBatteryFees).
            if (grid && account.isShare()) _moveShare(id, SettlementEntry.netWh(word), true);
            // At most MAX_ENTRIES int128 amounts: no overflow.
            unchecked {
                sum += amount;
            }
        }
        // The grid's change was minus the entries' sum and the storage fees it passed on.
        if (grid) {
            sum += _reverseStorageFees(interval, bucket);
            _update(GRID_ID, _accounts[GRID_ID], sum, Move.Reverse, bucket);
        }
    }

    function _bondWithdrawableAt() private view returns (uint256) {
        return (uint256(_state.lastSettledBucket) + 2) * _clock.disputeWindow;
    }
}
