// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title MarketEvents
/// @notice Every event and custom error of the market, declared once: the market is one
/// address whose functions live in modules (see EnergyMarket), and an auditor decodes
/// all of its logs and reverts with this one list. Errors carry the evidence: which
/// participant, which check, which numbers.
abstract contract MarketEvents {
    // ------------------------------------------------------------------ roles (IAccessControl)
    event RoleGranted(bytes32 indexed role, address indexed account, address indexed sender);
    event RoleRevoked(bytes32 indexed role, address indexed account, address indexed sender);
    event RoleAdminChanged(bytes32 indexed role, bytes32 indexed previousAdminRole, bytes32 indexed newAdminRole);

    error AccessControlUnauthorizedAccount(address account, bytes32 neededRole);
    error AccessControlBadConfirmation();

    // ------------------------------------------------------------------ participants and keys
    /// @notice A participant joined the market.
    event ParticipantRegistered(uint32 indexed participant, address indexed owner, uint16 zone, string name);
    /// @notice A participant's zone or active flag changed (inactive: not settled).
    event ParticipantUpdated(uint32 indexed participant, uint16 zone, bool active);
    /// @notice The admin froze (or unfroze) a participant: no settlement, no withdrawal.
    event ParticipantFrozen(uint32 indexed participant, bool frozen);
    /// @notice The participant's owner handed the participant to a new owner key.
    event OwnerRotated(uint32 indexed participant, address indexed previousOwner, address indexed newOwner);
    /// @notice Readings of `participant` for intervals from `fromInterval` on are signed by `meter`.
    event MeterKeySet(uint32 indexed participant, address indexed meter, uint64 fromInterval);
    /// @notice Two different readings of one interval were signed by the participant's meter key.
    event MeterEquivocated(uint32 indexed participant, uint64 indexed interval, address meter);

    error ZeroAddress();
    error AlreadyRegistered(address owner, uint32 participant);
    error UnknownParticipant(uint32 participant);
    error UnknownAccount(address owner);
    error InactiveParticipant(uint32 participant);
    error FrozenParticipant(uint32 participant);
    error TooManyParticipants();
    error NotParticipantOwner(uint32 participant, address caller);
    error LengthMismatch(uint256 expected, uint256 got);

    // ------------------------------------------------------------------ wallets and solvency
    /// @notice `from` paid `amount` tokens into `participant`'s wallet.
    event Deposited(uint32 indexed participant, address indexed from, uint256 amount);
    /// @notice `participant`'s owner took `amount` tokens out of its wallet.
    event Withdrawn(uint32 indexed participant, address indexed to, uint256 amount);
    /// @notice The admin let `participant`'s balance go down to `-limit` units.
    event CreditLimitSet(uint32 indexed participant, uint256 limit);
    /// @notice Tokens set aside (or taken back) to back the credit limits; `reserve` after.
    event ReserveChanged(address indexed by, int256 change, uint256 reserve);

    error ZeroAmount();
    /// @dev `withdrawable` is the balance less credits not yet final.
    error InsufficientBalance(uint32 participant, int256 withdrawable, uint256 needed);
    /// @dev A debit would take the participant below its credit limit: `available` is
    /// its final balance plus its credit limit.
    error CreditLimitExceeded(uint32 participant, int256 available, int256 needed);
    error CreditLimitBelowDebt(uint32 participant, uint256 limit, uint256 debt);
    error ReserveTooSmall(uint256 reserve, uint256 creditLimits);
    error BalanceOutOfRange(uint32 participant, int256 balance);
    error LockedCreditOutOfRange(uint32 participant);
    error ValueOutOfRange(string field, uint256 value, uint256 max);

    // ------------------------------------------------------------------ terms and capacity
    /// @notice Terms version `index` applies to intervals from `fromInterval` on (until
    /// the next version). Prices in minor units per kWh; `peakHours` bit h: UTC hour h
    /// is at the peak import price.
    event TermsScheduled(
        uint256 indexed index,
        uint64 fromInterval,
        uint256 importPrice,
        uint256 peakImportPrice,
        uint256 exportPrice,
        uint256 p2pFee,
        uint32 peakHours,
        bool payAsBid
    );
    /// @notice The grid operator fixed the tariffs of one interval ahead of the notice period.
    event IntervalPricesSet(uint64 indexed interval, uint256 importPrice, uint256 exportPrice);
    /// @notice The grid operator set the capacity of one interval.
    event CapacitySet(uint64 indexed interval, uint64 importWh, uint64 exportWh);
    /// @notice The grid operator set the default capacity.
    event DefaultCapacitySet(uint64 importWh, uint64 exportWh);

    error NoticeTooShort(uint64 interval, uint256 startsAt, uint256 earliest);
    error TermsOutOfOrder(uint64 fromInterval, uint64 lastFromInterval);
    error InvalidTariffs(uint256 importPrice, uint256 exportPrice, uint256 p2pFee);
    error CapacityForPastInterval(uint64 interval, uint64 nextInterval);
    /// @dev A limit must be known before its interval runs (once it ran, a limit that binds
    /// after the fact would hand the congestion rent to whoever set it).
    error CapacityAfterStart(uint64 interval, uint256 startsAt, uint256 now_);
    /// @dev A default changed at `changedAt` still applies its predecessor to unsettled
    /// `interval`, which started before: settle it first.
    error DefaultCapacityInUse(uint64 interval, uint256 changedAt);
    error WrongTermsIndex(uint64 interval, uint256 index);

    // ------------------------------------------------------------------ mandates and orders
    /// @notice `participant`'s signed mandate is now the one in force. Prices in minor
    /// units per kWh; validity in unix seconds (inclusive); SoC bounds (ppm) are checked
    /// by auditors against the inputs, not here.
    event MandateSet(
        uint32 indexed participant,
        uint64 nonce,
        uint64 maxBuyPrice,
        uint64 minSellPrice,
        uint32 minSocPpm,
        uint32 maxSocPpm,
        uint64 validFrom,
        uint64 validUntil,
        uint64 maxEnergyWh
    );
    /// @notice Every mandate of `participant` with a nonce up to `nonce` is revoked,
    /// including any signed but not yet submitted.
    event MandateRevoked(uint32 indexed participant, uint64 nonce);
    /// @notice Every order of `participant` with a nonce up to `nonce` is cancelled.
    event OrdersCancelled(uint32 indexed participant, uint64 nonce);

    error BadMandateSignature(uint32 participant, address signer);
    error BadCancellationSignature(uint32 participant, address signer);
    error StaleMandateNonce(uint32 participant, uint64 floor, uint64 nonce);
    error InvalidSocBounds(uint32 participant, uint32 minSocPpm, uint32 maxSocPpm);
    error NoMandate(uint32 participant);
    error RevokedMandate(uint32 participant, uint64 nonce);
    error MandateNotInForce(uint32 participant, uint64 interval, uint64 validFrom, uint64 validUntil);
    error MandateEnergyExceeded(uint32 participant, uint256 energyWh, uint256 maxEnergyWh);
    error MandatePriceExceeded(uint32 participant, int256 costMilli, int256 limitMilli);
    error MandatePriceBelowMinimum(uint32 participant, int256 revenueMilli, int256 limitMilli);
    error NonceNotAboveFloor(uint32 participant, uint64 floor, uint64 nonce);
    error BadOrderSignature(uint32 participant, address signer);
    error OrderCancelled(uint32 participant, uint64 nonce, uint64 floor);
    error OrderExpired(uint32 participant, uint64 expiry, uint256 timestamp);
    error OrderSideMismatch(uint32 participant, uint8 side, int256 netWh);
    error OrderQuantityExceeded(uint32 participant, uint256 energyWh, uint64 signedWh);
    error OrderPriceExceeded(uint32 participant, int256 costMilli, int256 limitMilli);
    error OrderPriceBelowLimit(uint32 participant, int256 revenueMilli, int256 limitMilli);
    error MissingOrder(uint32 participant);
    error UnusedOrders(uint256 count);

    // ------------------------------------------------------------------ settlement
    /// @notice Interval `interval` was settled at `settledAt` with these prices (from
    /// the terms in force, `termsIndex`) and flows; its entries are in EntriesSettled
    /// (one per chunk) and hash to `entriesRoot`. Its wallet changes are final, and its
    /// credits withdrawable, from `finalAt` unless a dispute reverses it before.
    event IntervalSettled(
        uint64 indexed interval,
        bytes32 inputsHash,
        uint256 importPrice,
        uint256 exportPrice,
        uint256 p2pPrice,
        uint256 p2pFee,
        uint256 gridImportWh,
        uint256 gridExportWh,
        int256 gridAmount,
        uint256 participants,
        bool payAsBid,
        bytes32 entriesRoot,
        uint256 finalAt
    );
    /// @notice The SettlementEntry words of one chunk of `interval` (a settlement in
    /// one transaction is chunk 0): every participant's energy and wallet change, and
    /// the declared exclusions. One log per chunk instead of one per participant.
    event EntriesSettled(uint64 indexed interval, uint256 chunk, uint256[] entries);
    /// @notice Chunk `chunk` of the pending `interval` passed every per-entry check (no
    /// money moved); `last` marks the chunk after which the interval's totals were checked.
    event ChunkVerified(
        uint64 indexed interval, uint256 chunk, uint256 entries, uint32 lastParticipant, bytes32 entriesHash, bool last
    );
    /// @notice Verified chunk `chunk` of `interval` moved its `entries` wallets.
    event ChunkApplied(uint64 indexed interval, uint256 chunk, uint256 entries);
    /// @notice The pending `interval` was discarded before any chunk was applied.
    event PendingAbandoned(uint64 indexed interval, bytes32 headerHash, uint256 verifiedChunks);

    error IntervalOutOfOrder(uint64 expected, uint64 got);
    error IntervalNotEnded(uint64 interval, uint256 endsAt, uint256 timestamp);
    error TooManyEntries(uint64 interval, uint256 entries, uint256 max);
    error EmptySettlement(uint64 interval);
    error ParticipantsNotAscending(uint32 previous, uint32 participant);
    error PriceOutOfRange(uint256 p2pPrice, uint256 exportPrice, uint256 maxPrice);
    error PaymentMismatch(uint32 participant, int256 amount, int256 expectedMilli);
    error P2PEnergyNotConserved(uint64 interval, int256 imbalanceWh);
    error NegativeSpread(uint64 interval, int256 spreadMilli);
    error ImportCapacityExceeded(uint64 interval, uint256 importWh, uint256 capacityWh);
    error ExportCapacityExceeded(uint64 interval, uint256 exportWh, uint256 capacityWh);
    error BadExclusion(uint32 participant);
    error NotExcludable(uint32 participant, uint64 interval);
    error BondTooLow(uint256 bond, uint256 required);
    error PendingIntervalOpen(uint64 interval, uint8 phase);
    error HeaderMismatch(uint64 interval, bytes32 expected, bytes32 got);
    error VerificationClosed(uint64 interval, uint32 verifiedChunks);
    error NotVerified(uint64 interval, uint8 phase);
    error ChunkOutOfOrder(uint64 interval, uint256 expected, uint256 got);
    error ChunkHashMismatch(uint64 interval, uint256 chunk, bytes32 verified, bytes32 got);
    error NoPendingInterval();
    error PendingPartlyApplied(uint64 interval, uint32 appliedChunks, uint32 totalChunks);
    error PendingNotStale(uint64 interval, uint256 abandonableAt);

    // ------------------------------------------------------------------ disputes and the bond
    /// @notice A dispute proved interval `interval` wrong for `participant` (kind 1: its
    /// entry contradicts the meter-signed reading; kind 2: the reading was left out):
    /// `disputer` got `reward` from the oracle's bond, and every wallet change of the
    /// interval is taken back by the reversal that follows (ReversalOpened ..
    /// ReversalClosed, in this transaction for an interval of one chunk). The oracle
    /// may settle the interval again once it is closed.
    event IntervalReversed(
        uint64 indexed interval, uint32 indexed participant, address indexed disputer, uint8 kind, uint256 reward
    );
    /// @notice The dispute of `interval` opened its reversal: `chunks` chunks of wallet
    /// changes to take back, each exactly once (DisputeModule.reverseChunk, anyone may).
    event ReversalOpened(uint64 indexed interval, uint256 chunks);
    /// @notice Chunk `chunk` of `interval`'s reversal took back the wallet changes of its
    /// `entries` entries, which summed to `sum` (what the grid's side gets back at the close).
    event ChunkReversed(uint64 indexed interval, uint256 chunk, uint256 entries, int256 sum);
    /// @notice The last chunk of `interval`'s reversal is reversed: the grid's wallet
    /// moved by `gridAmount` (the entries' sum and the storage fees; 0 if the interval
    /// had not closed). Settlements and withdrawals may go on.
    event ReversalClosed(uint64 indexed interval, int256 gridAmount);
    /// @notice The oracle's bond changed by `change` to `bond`.
    event BondChanged(address indexed by, int256 change, uint256 bond);
    /// @notice The admin set what a successful dispute pays (and the least bond to settle).
    event DisputeRewardSet(uint256 reward);

    error NotDisputable(uint64 interval);
    error IntervalFinal(uint64 interval, uint256 finalAt);
    error EntriesMismatch(uint64 interval, bytes32 root);
    /// @notice The chunks `firstChunk` .. `firstChunk + proofChunks - 1` a dispute carries
    /// are not among the interval's `chunks` chunks (or it carries none).
    error BadChunkProof(uint64 interval, uint256 firstChunk, uint256 proofChunks, uint256 chunks);
    /// @notice `participant` is not in chunks `firstChunk` .. `lastChunk`, but the
    /// chunks do not show it is in no other: it is below the first one's first entry
    /// (with an earlier chunk) or above the last one's last entry (with a later chunk).
    error AbsenceNotProved(uint32 participant, uint256 firstChunk, uint256 lastChunk);
    /// @notice A dispute's reversal of `interval` is open with `chunksLeft` chunks not yet
    /// reversed: settlements, applied chunks, withdrawals, the bond's withdrawal and other
    /// disputes wait until it is closed (anyone may send DisputeModule.reverseChunk).
    error ReversalOpen(uint64 interval, uint256 chunksLeft);
    error NoReversalOpen(uint64 interval);
    error ChunkNotInReversal(uint64 interval, uint256 chunk, uint256 chunks);
    error ChunkAlreadyReversed(uint64 interval, uint256 chunk);
    error TooManyChunks(uint64 interval, uint256 chunks, uint256 max);
    error ChunkTooLarge(uint64 interval, uint256 entries, uint256 max);
    error ReadingForOtherInterval(uint64 interval, uint64 readingInterval);
    error BadMeterSignature(uint32 participant, address signer, address meter);
    error NoMeterKey(uint32 participant, uint64 interval);
    error NoContradiction(uint32 participant, int256 settledWh, int256 readWh);
    error NotEligible(uint32 participant, uint64 interval);
    error NotEquivocation(uint32 participant);
    error BondLocked(uint256 withdrawableAt);
    error InsufficientBond(uint256 bond, uint256 needed);

    // ------------------------------------------------------------------ shared batteries (issue 12)
    /// @notice `participant` was registered as a home's account in shared battery
    /// `battery`, holding a share of `capacityWh` of it; it pays the storage fee.
    /// It holds `storedWh` then, in a battery that keeps `chargeEfficiencyPpm` of what goes
    /// in and delivers `dischargeEfficiencyPpm` of what comes out (millionths).
    event ShareRegistered(
        uint32 indexed participant,
        uint32 indexed battery,
        uint64 capacityWh,
        uint64 storedWh,
        uint32 chargeEfficiencyPpm,
        uint32 dischargeEfficiencyPpm
    );
    /// @notice Terms version `index`, from `fromInterval` on, charges share participants
    /// `storageFee` minor units per kWh they take in, paid to participant `storageOperator`.
    /// (A TermsScheduled version carries the storage fee of the version before it.)
    event StorageFeeScheduled(uint256 indexed index, uint64 fromInterval, uint256 storageFee, uint32 storageOperator);
    /// @notice The share participants of `interval` paid `amount` of storage fees into
    /// `operator`'s wallet (locked until final, like any settlement credit).
    event StorageFeesPaid(uint64 indexed interval, uint32 indexed operator, uint256 amount);
    /// @notice A dispute reversed `interval`, and with it the storage fees `operator` got.
    event StorageFeesReversed(uint64 indexed interval, uint32 indexed operator, uint256 amount);

    error NotAShare(uint32 participant);
    error ShareCapacityOutOfRange(uint64 capacityWh, uint64 max);
    /// @notice A function only the market calls on itself was called by `caller`.
    error NotTheMarket(address caller);
    /// @notice The entry of share `participant` in `interval` (`netWh` at its meter, + in)
    /// would take the energy its account can deliver from `beforePwh` to `afterPwh`
    /// (pWh), below zero or above its share, `capacityPwh` (SharedBatteryFees).
    error ShareEnergyOutOfRange(
        uint64 interval, uint32 participant, int256 netWh, int256 beforePwh, int256 afterPwh, int256 capacityPwh
    );

    // ------------------------------------------------------------------ the router
    error UnknownSelector(bytes4 selector);
    error SelectorClash(bytes4 selector, address first, address second);

    // ------------------------------------------------------------------ zones (issue 11)
    /// @notice Interval `interval` settled at one P2P price per zone (`zonePrices[z]`,
    /// minor units per kWh, for participants whose AccountWord zone is z).
    /// `congestionRentMilli` (thousandths of a unit, >= 0) is what P2P buyers paid
    /// beyond what P2P sellers received, Σ p2pWh × zone price: it is part of the grid's
    /// wallet change in IntervalSettled, which precedes this event.
    event ZonePricesSettled(uint64 indexed interval, uint64[] zonePrices, int256 congestionRentMilli);
    /// @notice The grid operator set zone `zone`'s import/export limit (Wh per interval)
    /// for intervals without their own; values beyond 2^48 - 1 mean no limit.
    event DefaultZoneCapacitySet(uint16 indexed zone, uint64 importWh, uint64 exportWh);
    /// @notice The grid operator set zone `zone`'s import/export limit for one interval.
    event ZoneCapacitySet(uint64 indexed interval, uint16 indexed zone, uint64 importWh, uint64 exportWh);

    error ZoneCountOutOfRange(uint256 zones, uint256 max);
    error ZonalUnderPayAsBid(uint64 interval);
    error ZonePriceOutOfRange(uint16 zone, uint256 price, uint256 exportPrice, uint256 maxPrice);
    error ZoneWithoutPrice(uint32 participant, uint16 zone, uint256 zones);
    error ZoneImportCapacityExceeded(uint64 interval, uint16 zone, uint256 importWh, uint256 capacityWh);
    error ZoneExportCapacityExceeded(uint64 interval, uint16 zone, uint256 exportWh, uint256 capacityWh);
}
