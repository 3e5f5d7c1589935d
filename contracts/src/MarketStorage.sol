// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {MarketEvents} from "./MarketEvents.sol";
import {AccountWord} from "./lib/AccountWord.sol";
import {TermsWord, IntervalWord, DefaultCapacityWord} from "./lib/TermsWord.sol";

/// @title MarketStorage
/// @notice The market's one storage layout, inherited unchanged by the router
/// (EnergyMarket) and by every module it delegates to, so that all of them read and
/// write the same slots. Modules declare no state of their own. New state goes at the
/// end, and new fields into the free bits of the packed words (see lib/).
///
/// Also here: what more than one module needs (roles, the market clock, EIP-712, the
/// terms of an interval) and `_update`, the one function that changes a balance.
abstract contract MarketStorage is MarketEvents, ReentrancyGuardTransient {
    using AccountWord for uint256;

    bytes32 internal constant DEFAULT_ADMIN = 0x00;
    /// @dev Submits settlements; holds a bond that pays for every dispute it loses.
    bytes32 internal constant ORACLE = keccak256("ORACLE_ROLE");
    /// @dev Sets tariffs and capacities; owns the grid's wallet (participant 0).
    bytes32 internal constant GRID_OPERATOR = keccak256("GRID_OPERATOR_ROLE");
    uint32 internal constant GRID_ID = 0;
    /// @dev Most entries of one interval. A dispute reverses them chunk by chunk
    /// (DisputeModule.reverseChunk), each chunk one transaction under the EIP-7825 cap
    /// of 16,777,216 gas, so the limit is the chunk count times what a chunk holds.
    uint256 internal constant MAX_ENTRIES = 10000;
    /// @dev Most chunks of one interval: a dispute carries every chunk's hash and stores
    /// those of the chunks it must reverse (~23k gas each), which this keeps under ~1.5M
    /// gas whatever the oracle's chunking; 10,000 entries need ~9 chunks of ~1,100.
    uint256 internal constant MAX_CHUNKS = 64;
    /// @dev Most entries of one verify chunk: its reverse chunk (DisputeModule.reverseChunk,
    /// ~6.4k gas an entry, ~11.6k a share's) must fit one transaction whatever the
    /// entries are, or a reversal could never close: 1,250 x 11.6k is under 14.6M gas.
    uint256 internal constant MAX_CHUNK_ENTRIES = 1250;
    /// @dev A settlement record that was reversed by a dispute (see `_records`).
    uint256 internal constant REVERSED = 1;
    /// @dev Participant ids fit 30 bits: an entry word keeps its two top bits for flags.
    uint256 internal constant MAX_PARTICIPANTS = 1 << 30;

    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant NAME_HASH = keccak256("GridLedger");
    bytes32 private constant VERSION_HASH = keccak256("1");
    int256 private constant BALANCE_MIN = type(int72).min;
    int256 private constant BALANCE_MAX = type(int72).max;

    /// @dev The market's clock and windows, fixed at deployment: renumbering intervals or
    /// shortening the notice later would let terms change retroactively.
    struct Clock {
        uint40 epoch; // unix time interval 0 starts
        uint32 intervalSeconds;
        uint32 disputeWindow; // seconds; credits are final 1-2 windows after settlement
        uint32 noticeSeconds; // terms apply only to intervals starting this much later
    }

    struct State {
        uint64 nextInterval; // the next interval to settle in order
        uint32 participantCount; // the grid included; ids are 0..count-1
        uint32 termsCount; // versions of the terms
        uint32 lastSettledBucket; // lock bucket of the latest settlement
        // The open reversal (see `_reversal`), here in the free bits of the word every
        // settlement reads anyway, so that refusing settlements while it is open costs
        // them no extra storage read.
        uint64 reversalInterval; // the interval a dispute reversed, being reversed
        uint32 reversalLeft; // its chunks not yet reversed; 0: no reversal open
    }

    /// @dev What a successful dispute pays, out of the oracle's bond.
    struct Bond {
        uint128 amount;
        uint128 reward;
    }

    /// @dev Tokens set aside to back the credit limits, which may not sum to more.
    struct Reserve {
        uint128 amount;
        uint128 creditLimits;
    }

    struct MeterKey {
        address key;
        uint64 fromInterval;
    }

    /// @notice The per-interval part of a settlement: the prices come from the terms in
    /// force (`termsIndex`, checked), only the uniform P2P price is the oracle's (within
    /// the tariffs; under pay-as-bid it prices mandate entries only).
    struct Header {
        uint64 interval;
        bytes32 inputsHash; // keccak256 of the canonical clearing inputs
        uint64 p2pPrice;
        uint32 termsIndex;
    }

    /// @notice A terms version's prices (minor units per kWh) and pricing rule.
    struct Tariffs {
        uint64 importPrice;
        uint64 peakImportPrice;
        uint64 exportPrice;
        uint64 p2pFee;
        uint32 peakHours;
        bool payAsBid;
    }

    /// @dev Running sums over a settlement's entries (milli: thousandths of a unit).
    struct Totals {
        int256 p2pWh;
        uint256 importWh;
        uint256 exportWh;
        int256 amount; // of the entries' energy: a share's storage fee is not in it
        int256 gridExpectedMilli; // what the grid takes: the other side of every payment
        int256 feeMilli; // P2P fees paid by buyers, part of the grid's side
        int256 storageFee; // units the share participants paid, to the storage operator
    }

    /// @dev The interval being settled in chunks; at most one.
    struct Pending {
        uint64 interval;
        uint8 phase; // 0 none, 1 verifying, 2 applying
        uint32 verifiedChunks;
        uint32 appliedChunks;
        uint32 lastParticipant; // of the last verified chunk
        uint32 participants; // entries verified so far
        uint40 openedAt;
        bytes32 headerHash; // keccak256(abi.encode(Header)) every chunk must match
        bytes32 root; // hash chain over the applied chunks' hashes
        Totals totals;
        Header header;
    }

    uint8 internal constant NONE = 0;
    uint8 internal constant VERIFYING = 1;
    uint8 internal constant APPLYING = 2;

    // slither's uninitialized-state looks at each module alone and so misses that the
    // router's constructor and the other modules write these: every state variable
    // below carries a disable for it.
    /// @dev The router's table: which module serves each function selector.
    // slither-disable-next-line uninitialized-state,constable-states,immutable-states
    mapping(bytes4 selector => address) internal _moduleOf;
    // slither-disable-next-line uninitialized-state,constable-states,immutable-states
    mapping(bytes32 role => mapping(address account => bool)) internal _roles;
    // slither-disable-next-line uninitialized-state,constable-states,immutable-states
    Clock internal _clock;
    // slither-disable-next-line uninitialized-state,constable-states,immutable-states
    State internal _state;
    // slither-disable-next-line uninitialized-state,constable-states,immutable-states
    IERC20 internal _token;
    // slither-disable-next-line uninitialized-state,constable-states,immutable-states
    Bond internal _bond;
    // slither-disable-next-line uninitialized-state,constable-states,immutable-states
    Reserve internal _reserve;
    /// @dev AccountWord per participant: balance, credit, zone, flags, locked credit.
    // slither-disable-next-line uninitialized-state,constable-states,immutable-states
    mapping(uint32 participant => uint256) internal _accounts;
    /// @dev OwnerWord per participant: owner and nonce floors.
    // slither-disable-next-line uninitialized-state,constable-states,immutable-states
    mapping(uint32 participant => uint256) internal _owners;
    /// @dev id + 1, so that 0 means "not registered".
    // slither-disable-next-line uninitialized-state,constable-states,immutable-states
    mapping(address owner => uint32) internal _idPlusOne;
    /// @dev MandateWord per participant: the mandate in force.
    // slither-disable-next-line uninitialized-state,constable-states,immutable-states
    mapping(uint32 participant => uint256) internal _mandates;
    /// @dev Each participant's meter keys, oldest first, each from an interval on.
    // slither-disable-next-line uninitialized-state,constable-states,immutable-states
    mapping(uint32 participant => MeterKey[]) internal _meterKeys;
    /// @dev TermsWord per version, in order of their first interval.
    // slither-disable-next-line uninitialized-state,constable-states,immutable-states
    mapping(uint256 index => uint256) internal _terms;
    /// @dev IntervalWord per interval: capacity and tariffs the grid operator set for it.
    // slither-disable-next-line uninitialized-state,constable-states,immutable-states
    mapping(uint64 interval => uint256) internal _intervalTerms;
    /// @dev DefaultCapacityWord: the capacity of intervals without their own, and the one before.
    // slither-disable-next-line uninitialized-state,constable-states,immutable-states
    uint256 internal _defaultCapacity;
    /// @dev Per settled interval: the top 216 bits of its entries root and, in the low 40
    /// bits, when it was settled; REVERSED after a successful dispute; 0 before.
    // slither-disable-next-line uninitialized-state,constable-states,immutable-states
    mapping(uint64 interval => uint256) internal _records;
    // slither-disable-next-line uninitialized-state,constable-states,immutable-states
    Pending internal _pending;
    /// @dev keccak256 of each verified chunk's entry words, by chunk index.
    // slither-disable-next-line uninitialized-state,constable-states,immutable-states
    mapping(uint256 chunk => bytes32) internal _chunkHashes;

    // ---- shared batteries (issue 12)
    /// @dev ShareWord per share participant: its battery's number (bits 0..31), its share
    /// of the battery, Wh (bits 32..79), its battery's charge and discharge efficiency,
    /// ppm (bits 80..99, 100..119), all written once, at its registration; and the energy
    /// it can deliver, pWh (int136, bits 120..255), which every settlement moves
    /// (SharedBatteryFees).
    // slither-disable-next-line uninitialized-state,constable-states,immutable-states
    mapping(uint32 participant => uint256) internal _shares;
    /// @dev Per settled interval whose shares paid storage fees: the amount (bits 32..)
    /// and the operator it went to (bits 0..31), so that a dispute can take it back.
    // slither-disable-next-line uninitialized-state,constable-states,immutable-states
    mapping(uint64 interval => uint256) internal _storageFeesPaid;
    // ---- zones (issue 11)
    // A zonal settlement prices each participant's P2P energy at its zone's price and
    // keeps each zone's grid import/export within the zone's capacity. Line flows of a
    // meshed network are not checked here (PTDF arithmetic): auditors check them.

    /// @dev Most zones one settlement prices. The zone loops (price checks, capacity
    /// reads: two cold SLOADs per zone) and the per-zone running totals of a chunked
    /// settlement cost gas per zone per interval; 64 keeps that under ~300k gas, which
    /// is a small part of a settlement of a few hundred homes, and is more feeders than a
    /// community's low-voltage grid has.
    uint256 internal constant MAX_ZONES = 64;
    /// @dev DefaultCapacityWord per zone for intervals without their own (unset: no limit).
    // slither-disable-next-line uninitialized-state,constable-states,immutable-states
    mapping(uint16 zone => uint256) internal _zoneCapacity;
    /// @dev IntervalWord capacity per interval and zone (unset: the zone's default).
    // slither-disable-next-line uninitialized-state,constable-states,immutable-states
    mapping(uint64 interval => mapping(uint16 zone => uint256)) internal _intervalZoneCapacity;
    /// @dev The zone prices of the pending chunked interval (empty: uniform).
    // slither-disable-next-line uninitialized-state,constable-states,immutable-states
    uint64[] internal _pendingZonePrices;
    /// @dev Per-zone grid energy of the pending chunked interval's verified chunks:
    /// import Wh << 128 | export Wh.
    // slither-disable-next-line uninitialized-state,constable-states,immutable-states
    mapping(uint256 zone => uint256) internal _pendingZoneWh;
    // ---- shared batteries' stored energy (issue 12; the ShareWord in _shares holds each
    // account's energy, SharedBatteryFees)
    /// @dev The share entries of the pending chunked interval's verified chunks, each its
    /// net Wh (int, bits 32..) and participant (bits 0..31): their energy goes into their
    /// accounts when the interval closes, not before.
    // slither-disable-next-line uninitialized-state,constable-states,immutable-states
    uint256[] internal _pendingShareEntries;

    // ---- disputes reversed in chunks
    /// @dev What reversing the open reversal's chunks needs (with State.reversalInterval
    /// and State.reversalLeft): how many chunks moved money (all of a closed interval;
    /// the applied ones of an interval disputed while being applied), the lock bucket of
    /// its settlement, whether it closed (then the grid, the storage fees and the share
    /// accounts moved too and are reversed with the last chunk), and the running sum of
    /// the wallet changes reversed so far, which the grid's side is moved by at the end.
    struct Reversal {
        uint32 chunks;
        uint32 bucket;
        bool closed;
        int128 sum; // each amount moved an int72 balance, so |amount| < 2^73: |sum| < 2^87
    }
    // slither-disable-next-line uninitialized-state,constable-states,immutable-states
    Reversal internal _reversal;
    /// @dev keccak256 of each chunk of the open reversal still to reverse, by chunk
    /// index; zero once reversed (or never part of it).
    // slither-disable-next-line uninitialized-state,constable-states,immutable-states
    mapping(uint256 chunk => bytes32) internal _reversalChunkHashes;
    /// @dev When the market was deployed (unix seconds): intervals that started before
    /// are history, whose capacities may be set after they started (TermsModule). Not in
    /// Clock, which every settlement copies to memory in full.
    // slither-disable-next-line uninitialized-state,constable-states,immutable-states
    uint256 internal _deployedAt;

    enum Move {
        Settle, // a settlement entry: credits locked until final, debits within the credit limit
        Deposit, // tokens paid in: final at once
        Withdraw, // tokens paid out: only from final funds, never on credit
        Reverse // a reversed settlement entry: its credit unlocked from its bucket
    }

    modifier onlyRole(bytes32 role) {
        _checkRole(role);
        _;
    }

    // ---------------------------------------------------------------- the one balance path

    /// @dev The one place a balance changes, so every rule on balances is checked here:
    /// a settlement's credit is locked until final and its debit may use the credit
    /// limit; a withdrawal takes only final, positive funds; a reversal takes back a
    /// credit from the bucket it was locked in. Returns the new word without storing it
    /// (a chunk being verified checks that its entries would pass); `_update` stores.
    /// `bucket` is the current bucket, or for Reverse the bucket of the settlement.
    function _moved(uint32 id, uint256 word, int256 delta, Move move, uint256 bucket)
        internal
        pure
        returns (uint256)
    {
        int256 balance;
        // |delta| < 2^128 and |balance| < 2^71: the sum fits int256, and so does the
        // difference to BALANCE_MIN, which is in range iff it is at most the range's width.
        unchecked {
            balance = word.balance() + delta;
            if (uint256(balance - BALANCE_MIN) > uint256(BALANCE_MAX - BALANCE_MIN)) {
                revert BalanceOutOfRange(id, balance);
            }
        }
        bool ok = true;
        if (delta > 0) {
            if (move == Move.Settle) (word, ok) = word.lock(uint256(delta), bucket);
        } else if (delta < 0) {
            if (move == Move.Reverse) {
                (word, ok) = word.unlock(uint256(-delta), bucket);
            } else {
                // Every term is below 2^73 in size: no overflow.
                unchecked {
                    int256 spendable = balance - int256(word.locked(bucket));
                    int256 credit = move == Move.Settle ? int256(word.creditLimit()) : int256(0);
                    if (spendable + credit < 0) {
                        if (move == Move.Withdraw) revert InsufficientBalance(id, spendable - delta, uint256(-delta));
                        revert CreditLimitExceeded(id, spendable - delta + credit, -delta);
                    }
                }
            }
        }
        if (!ok) revert LockedCreditOutOfRange(id);
        return word.withBalance(balance);
    }

    /// @dev `_moved`, stored.
    function _update(uint32 id, uint256 word, int256 delta, Move move, uint256 bucket) internal returns (uint256) {
        word = _moved(id, word, delta, move, bucket);
        _accounts[id] = word;
        return word;
    }

    /// @dev Refuses while a dispute's reversal is open: a settlement, a withdrawal or a
    /// dispute of another interval waits until every chunk of it is reversed (anyone may
    /// reverse them), so that nothing can spend or lock what the reversal takes back.
    function _requireNoReversal() internal view {
        State storage state = _state;
        uint32 left = state.reversalLeft;
        if (left != 0) revert ReversalOpen(state.reversalInterval, left);
    }

    /// @dev keccak256 of the entry words back to back, hashed in scratch memory above the
    /// free memory pointer without moving it: a chunk's hash.
    function _hashEntries(uint256[] calldata entries) internal pure returns (bytes32 result) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            let size := mul(entries.length, 0x20)
            calldatacopy(ptr, entries.offset, size)
            result := keccak256(ptr, size)
        }
    }

    // ---------------------------------------------------------------- roles

    function _checkRole(bytes32 role) internal view {
        if (!_roles[role][msg.sender]) revert AccessControlUnauthorizedAccount(msg.sender, role);
    }

    function _grantRole(bytes32 role, address account) internal {
        if (_roles[role][account]) return;
        _roles[role][account] = true;
        emit RoleGranted(role, account, msg.sender);
    }

    function _revokeRole(bytes32 role, address account) internal {
        if (!_roles[role][account]) return;
        _roles[role][account] = false;
        emit RoleRevoked(role, account, msg.sender);
    }

    // ---------------------------------------------------------------- participants

    /// @dev The account word of a registered participant.
    function _existing(uint32 id) internal view returns (uint256) {
        if (id >= _state.participantCount) revert UnknownParticipant(id);
        return _accounts[id];
    }

    /// @dev Registers `owner` as a new active participant in `zone` whose readings
    /// `meter` signs from the interval being settled next on. Only the grid (id 0, no
    /// meter: its energy is the others' sum) is registered without a meter.
    function _register(address owner, address meter, uint16 zone, string memory name) internal returns (uint32 id) {
        if (owner == address(0)) revert ZeroAddress();
        uint32 known = _idPlusOne[owner];
        if (known != 0) revert AlreadyRegistered(owner, known - 1);
        id = _state.participantCount;
        if (id >= MAX_PARTICIPANTS) revert TooManyParticipants();
        _state.participantCount = id + 1;
        _accounts[id] = AccountWord.create(zone);
        _owners[id] = uint256(uint160(owner));
        _idPlusOne[owner] = id + 1;
        emit ParticipantRegistered(id, owner, zone, name);
        if (id != GRID_ID) {
            if (meter == address(0)) revert ZeroAddress();
            _meterKeys[id].push(MeterKey(meter, _state.nextInterval));
            emit MeterKeySet(id, meter, _state.nextInterval);
        }
    }

    /// @dev Tariffs a terms version or an interval may carry: exports pay at most what
    /// imports cost less the P2P fee, so that a P2P trade can beat the grid both ways.
    function _checkTariffs(uint256 importPrice, uint256 exportPrice, uint256 p2pFee) internal pure {
        if (importPrice > TermsWord.PRICE_MAX || exportPrice + p2pFee > importPrice) {
            revert InvalidTariffs(importPrice, exportPrice, p2pFee);
        }
    }

    function _requireOwner(uint32 id) internal view {
        if (id >= _state.participantCount) revert UnknownParticipant(id);
        if (address(uint160(_owners[id])) != msg.sender) revert NotParticipantOwner(id, msg.sender);
    }

    // ---------------------------------------------------------------- time

    /// @dev When interval `k` starts (unix seconds).
    function _intervalStart(Clock memory clock, uint256 k) internal pure returns (uint256) {
        return uint256(clock.epoch) + k * clock.intervalSeconds;
    }

    /// @dev The lock bucket of time `t` (see AccountWord).
    function _bucketOf(Clock memory clock, uint256 t) internal pure returns (uint256) {
        return t / clock.disputeWindow;
    }

    /// @dev When credits settled at `settledAt` become final: the end of the next bucket.
    function _finalAt(Clock memory clock, uint256 settledAt) internal pure returns (uint256) {
        return (settledAt / clock.disputeWindow + 2) * clock.disputeWindow;
    }

    // ---------------------------------------------------------------- terms

    /// @dev The terms version in force for interval `k`, which must be version `index`,
    /// and the interval's import and export prices (the grid operator's per-interval
    /// prices if set, else the version's time-of-use tariff).
    function _termsOf(Clock memory clock, uint64 k, uint256 index)
        internal
        view
        returns (uint256 terms, uint256 importPrice, uint256 exportPrice)
    {
        uint256 count = _state.termsCount;
        if (index >= count) revert WrongTermsIndex(k, index);
        terms = _terms[index];
        if (TermsWord.fromInterval(terms) > k) revert WrongTermsIndex(k, index);
        if (index + 1 < count && TermsWord.fromInterval(_terms[index + 1]) <= k) revert WrongTermsIndex(k, index);
        uint256 own = _intervalTerms[k];
        if (IntervalWord.hasPrices(own)) return (terms, IntervalWord.importPrice(own), IntervalWord.exportPrice(own));
        return (terms, TermsWord.importPriceAt(terms, _intervalStart(clock, k)), TermsWord.exportPrice(terms));
    }

    /// @dev Where a new terms version from `fromInterval` on goes (its index) and the word
    /// of the version in force just before it. `fromInterval` must start at least the
    /// notice period from now; versions that start at or after it (so not yet within
    /// their notice period) are replaced; the first version never is.
    function _placeTerms(uint64 fromInterval) internal view returns (uint256 index, uint256 previous) {
        if (fromInterval >= type(uint32).max) {
            revert ValueOutOfRange("fromInterval", fromInterval, type(uint32).max - 1);
        }
        Clock memory clock = _clock;
        uint256 startsAt = _intervalStart(clock, fromInterval);
        uint256 earliest = block.timestamp + clock.noticeSeconds;
        if (startsAt < earliest) revert NoticeTooShort(fromInterval, startsAt, earliest);
        index = _state.termsCount;
        // A version from `fromInterval` on or later starts beyond the notice period too,
        // so nobody can rely on it yet: it is replaced.
        while (index > 1 && TermsWord.fromInterval(_terms[index - 1]) >= fromInterval) {
            --index;
        }
        uint64 firstFrom = TermsWord.fromInterval(_terms[0]);
        if (index == 1 && firstFrom >= fromInterval) revert TermsOutOfOrder(fromInterval, firstFrom);
        previous = _terms[index - 1];
    }

    /// @dev The index of the terms version in force for interval `k` (binary search).
    function _termsIndexOf(uint64 k) internal view returns (uint256) {
        uint256 low = 0;
        uint256 high = _state.termsCount;
        while (high - low > 1) {
            uint256 mid = (low + high) / 2;
            if (TermsWord.fromInterval(_terms[mid]) <= k) low = mid;
            else high = mid;
        }
        return low;
    }

    /// @dev (import, export) capacity in Wh for interval `k`: its own, else the default
    /// in force when it started (DefaultCapacityWord). `clock` is the market's (_clock).
    function _capacityOf(uint64 k, Clock memory clock) internal view returns (uint256, uint256) {
        uint256 own = _intervalTerms[k];
        if (!IntervalWord.hasCapacity(own)) own = _defaultInForce(_defaultCapacity, k, clock);
        return (IntervalWord.importWh(own), IntervalWord.exportWh(own));
    }

    /// @dev (import, export) capacity in Wh of zone `zone` for interval `k`: the
    /// interval's own, else the zone's default in force when it started, else no limit.
    function _zoneCapacityOf(uint64 k, uint16 zone, Clock memory clock) internal view returns (uint256, uint256) {
        uint256 own = _intervalZoneCapacity[k][zone];
        if (!IntervalWord.hasCapacity(own)) own = _defaultInForce(_zoneCapacity[zone], k, clock);
        if (!IntervalWord.hasCapacity(own)) return (IntervalWord.WH_MAX, IntervalWord.WH_MAX);
        return (IntervalWord.importWh(own), IntervalWord.exportWh(own));
    }

    function _defaultInForce(uint256 word, uint64 k, Clock memory clock) private view returns (uint256) {
        return DefaultCapacityWord.inForce(word, _intervalStart(clock, k), _deployedAt);
    }

    // ---------------------------------------------------------------- EIP-712

    /// @dev Computed per call rather than cached: modules run in the market's context,
    /// where a module's own immutables would name the wrong contract.
    function _domainSeparator() internal view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, block.chainid, address(this)));
    }

    /// @dev Signer of the EIP-712 message `structHash` (address(0) if the signature is
    /// invalid, which is never an owner or meter: both are refused as zero).
    function _signer(bytes32 structHash, bytes calldata signature) internal view returns (address signer) {
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", _domainSeparator(), structHash));
        // slither-disable-next-line unused-return
        (signer,,) = ECDSA.tryRecover(digest, signature);
    }
}
