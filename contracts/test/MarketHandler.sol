// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {EnergyMarket} from "../src/EnergyMarket.sol";
import {GridToken} from "../src/GridToken.sol";
import {ParticipantRegistry} from "../src/ParticipantRegistry.sol";
import {Wallets} from "../src/Wallets.sol";
import {SettlementBuilder} from "./SettlementBuilder.sol";
import {Signing} from "./Signing.sol";
import {Vm, vm} from "./Vm.sol";

/// @dev The only thing forge calls during the invariant runs. Each action plays one
/// actor (admin, oracle, grid operator, a participant, a stranger), predicts from its
/// own model whether the market must accept or reject and with which error, and
/// reverts on any surprise; forge runs with fail_on_revert, so a surprise fails the
/// run. The model (ghost state) is what the invariants compare the contract against.
contract MarketHandler {
    using SettlementBuilder for SettlementBuilder.Draft;

    uint64 public constant FIRST_INTERVAL = 1000;
    uint256 internal constant POOL = 10;
    uint256 internal constant MAX_ENTRIES = 8;
    uint256 internal constant KEY_BASE = 0xA11CE0;

    GridToken public immutable token;
    EnergyMarket public immutable market;
    address public immutable admin = address(0xAD);
    address public immutable oracle = address(0x0AC1E);
    address public immutable gridOperator = address(0x6D);
    /// @dev Owners of participants 1.. come from here (key KEY_BASE + i) and pay deposits.
    address[POOL] public pool;

    // ---- model ----
    struct Capacity {
        uint64 importWh;
        uint64 exportWh;
        bool set;
    }

    /// @dev Same meaning as the contract's MandateLimits: validUntil 0 = revoked or none.
    struct Mandate {
        uint64 maxBuyPrice;
        uint64 minSellPrice;
        uint64 validUntil;
        uint64 nonce;
    }

    struct Settled {
        uint64 interval;
        uint256 importWh; // as emitted by the contract
        uint256 exportWh;
        uint64 importCapacityWh; // in force when it was settled, from the model
        uint64 exportCapacityWh;
        uint256 authorisedEntries; // entries covered by a signed order or mandate in force
        uint256 entries;
    }

    uint32 public ghostCount;
    mapping(uint32 => address) public ghostOwner;
    mapping(uint32 => uint256) internal _ghostKey;
    mapping(uint32 => bool) public ghostActive;
    mapping(uint32 => int256) public ghostBalance;
    mapping(uint32 => Mandate) public ghostMandate;
    mapping(address => uint256) public ghostTokens;
    uint256 public ghostBacking; // deposited minus withdrawn
    Capacity public ghostDefault;
    mapping(uint64 => Capacity) internal _ghostOverride;
    uint256 public oracleSettlements;
    mapping(uint64 => uint256) public timesSettled;
    Settled[] internal _settled;

    // ---- what ran, read by the test for its report ----
    uint256 public rejectedSettlements;
    /// @dev Rejected settlements by the error's selector: shows every check was reached.
    mapping(bytes4 => uint256) public rejections;
    uint256 public ordersSettled;
    uint256 public mandateEntriesSettled;
    uint256 public payAsBidSettled; // accepted pay-as-bid settlements with an order entry
    uint256 public emptySettled; // accepted settlements of intervals without entries
    uint256 public illiquidWithdrawals; // refused: more than the tokens the market holds
    uint256 public payAsBidMispriced; // sent: a pay-as-bid order entry at the P2P price

    error Surprise(string action, bytes expected, bytes got);
    error ModelMismatch(string what, int256 expected, int256 actual);

    constructor() {
        token = new GridToken(address(this));
        market = new EnergyMarket(admin, oracle, gridOperator, token, 50_000, 40_000, FIRST_INTERVAL);
        ghostDefault = Capacity(50_000, 40_000, true);
        ghostOwner[0] = gridOperator;
        ghostActive[0] = true;
        ghostCount = 1;
        for (uint256 i = 0; i < POOL; ++i) {
            pool[i] = vm.addr(KEY_BASE + i);
        }
        // A few participants from the start so that settlements happen early in a run.
        for (uint256 i = 1; i <= 3; ++i) {
            register(i);
        }
    }

    // =================================================================== actions

    /// @notice Someone pays tokens into a wallet (theirs or another's, or an unknown id).
    function deposit(uint256 payerSeed, uint256 idSeed, uint256 amount, bool approve) external {
        address payer = payerSeed % (POOL + 1) == POOL ? gridOperator : pool[payerSeed % POOL];
        uint32 id = uint32(idSeed % (ghostCount + 1)); // == ghostCount: unknown
        // Deposits of the order of a settlement's payments, so that wallets in debt can
        // leave others' credit beyond the tokens held (see withdraw).
        amount = amount % 4 == 0 ? 0 : amount % 1e6;
        token.mint(payer, amount);
        ghostTokens[payer] += amount;
        if (approve) {
            vm.prank(payer);
            token.approve(address(market), amount);
        }

        bytes memory expected;
        if (amount == 0) expected = abi.encodeWithSelector(Wallets.ZeroAmount.selector);
        else if (id >= ghostCount) expected = _unknown(id);
        else if (!approve) {
            expected = abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientAllowance.selector, address(market), 0, amount
            );
        }
        vm.prank(payer);
        try market.deposit(id, amount) {
            _expectSuccess("deposit", expected);
            ghostBalance[id] += int256(amount);
            ghostTokens[payer] -= amount;
            ghostBacking += amount;
        } catch (bytes memory got) {
            _expectRevert("deposit", expected, got);
        }
        // A rejected deposit leaves its approval behind; clear it so that the next
        // unapproved deposit really has none.
        vm.prank(payer);
        token.approve(address(market), 0);
    }

    /// @notice A participant's owner withdraws from its own wallet, sometimes too much.
    function withdraw(uint256 idSeed, uint256 amount) external {
        uint32 id = uint32(idSeed % ghostCount);
        address owner = ghostOwner[id];
        int256 balance = ghostBalance[id];
        uint256 available = balance > 0 ? uint256(balance) : 0;
        amount = amount % 3 == 0 ? available + amount % 1e6 : amount % (available + 1);

        bytes memory expected;
        if (amount == 0) {
            expected = abi.encodeWithSelector(Wallets.ZeroAmount.selector);
        } else if (int256(amount) > balance) {
            expected = abi.encodeWithSelector(Wallets.InsufficientBalance.selector, id, balance, amount);
        } else if (amount > ghostBacking) {
            // Wallets may be in debt, so credits can exceed the tokens held: the
            // wallets still sum to the tokens, but the market cannot pay this out.
            expected = abi.encodeWithSelector(Wallets.InsufficientLiquidity.selector, ghostBacking, amount);
            ++illiquidWithdrawals;
        }
        vm.prank(owner);
        try market.withdraw(amount) {
            _expectSuccess("withdraw", expected);
            ghostBalance[id] -= int256(amount);
            ghostTokens[owner] += amount;
            ghostBacking -= amount;
        } catch (bytes memory got) {
            _expectRevert("withdraw", expected, got);
        }
    }

    /// @notice The admin registers a pool address (again, if it already is).
    function register(uint256 seed) public {
        uint256 slot = seed % POOL;
        address owner = seed % 16 == 0 ? address(0) : pool[slot];
        bytes memory expected;
        if (owner == address(0)) {
            expected = abi.encodeWithSelector(ParticipantRegistry.ZeroAddress.selector);
        } else {
            for (uint32 id = 0; id < ghostCount; ++id) {
                if (ghostOwner[id] == owner) {
                    expected = abi.encodeWithSelector(ParticipantRegistry.AlreadyRegistered.selector, owner, id);
                }
            }
        }
        vm.prank(admin);
        try market.register(owner, uint16(seed >> 8), "home") returns (uint32 id) {
            _expectSuccess("register", expected);
            _equal("new participant id", ghostCount, id);
            ghostOwner[id] = owner;
            _ghostKey[id] = KEY_BASE + slot;
            ghostActive[id] = true;
            ++ghostCount;
        } catch (bytes memory got) {
            _expectRevert("register", expected, got);
        }
    }

    /// @notice The admin (de)activates a participant or moves it to another zone.
    function updateParticipant(uint256 idSeed, uint16 zone, bool active) external {
        uint32 id = uint32(idSeed % (ghostCount + 1));
        bytes memory expected = id >= ghostCount ? _unknown(id) : bytes("");
        vm.prank(admin);
        try market.updateParticipant(id, zone, active) {
            _expectSuccess("updateParticipant", expected);
            ghostActive[id] = active;
        } catch (bytes memory got) {
            _expectRevert("updateParticipant", expected, got);
        }
    }

    /// @notice The grid operator limits one interval, sometimes an already settled one.
    function setCapacity(uint256 intervalSeed, uint64 importWh, uint64 exportWh) external {
        uint64 next = market.nextInterval();
        uint64 interval = intervalSeed % 4 == 0 && next > FIRST_INTERVAL
            ? next - 1 - uint64(intervalSeed % (next - FIRST_INTERVAL))
            : next + uint64(intervalSeed % 3);
        (importWh, exportWh) = (importWh % 80_000, exportWh % 80_000);
        bytes memory expected;
        if (interval < next) {
            expected = abi.encodeWithSelector(EnergyMarket.CapacityForPastInterval.selector, interval, next);
        }
        vm.prank(gridOperator);
        try market.setCapacity(interval, importWh, exportWh) {
            _expectSuccess("setCapacity", expected);
            _ghostOverride[interval] = Capacity(importWh, exportWh, true);
        } catch (bytes memory got) {
            _expectRevert("setCapacity", expected, got);
        }
    }

    /// @notice The grid operator changes the default capacity.
    function setDefaultCapacity(uint64 importWh, uint64 exportWh) external {
        (importWh, exportWh) = (importWh % 80_000, exportWh % 80_000);
        vm.prank(gridOperator);
        market.setDefaultCapacity(importWh, exportWh);
        ghostDefault = Capacity(importWh, exportWh, true);
    }

    /// @notice Time passes: mandates and orders expire.
    function warp(uint256 secondsAhead) external {
        vm.warp(block.timestamp + secondsAhead % 1 days);
    }

    /// @notice Anyone relays a participant's mandate: signed by the owner or not, with a
    /// fresh or a stale nonce, with sound or unsound state-of-charge bounds.
    function submitMandate(uint256 seed, uint64 maxBuyPrice, uint64 minSellPrice, uint64 validFor, uint8 variant)
        external
    {
        if (ghostCount < 2) return;
        uint32 id = uint32(1 + seed % (ghostCount - 1));
        uint64 current = ghostMandate[id].nonce;
        EnergyMarket.Mandate memory m = EnergyMarket.Mandate({
            participant: id,
            maxBuyPrice: maxBuyPrice % 1_500_000,
            minSellPrice: minSellPrice % 1_000_000,
            minSocPpm: uint32(seed % 500_000),
            maxSocPpm: uint32(500_000 + (seed >> 32) % 500_001),
            validUntil: uint64(block.timestamp) + validFor % 2 days,
            nonce: current + 1 + uint64(seed % 3)
        });
        uint256 key = _ghostKey[id];
        bytes memory expected;
        variant %= 6;
        if (variant == 0) {
            key = _strangerKey(seed);
            expected = abi.encodeWithSelector(EnergyMarket.BadMandateSignature.selector, id, vm.addr(key));
        } else if (variant == 1) {
            m.nonce = current - uint64(seed % (uint256(current) + 1));
            expected = abi.encodeWithSelector(EnergyMarket.StaleMandateNonce.selector, id, current, m.nonce);
        } else if (variant == 2) {
            (m.minSocPpm, m.maxSocPpm) = seed % 2 == 0 ? (m.maxSocPpm + 1, m.maxSocPpm) : (0, 1_000_001);
            expected = abi.encodeWithSelector(EnergyMarket.InvalidSocBounds.selector, id, m.minSocPpm, m.maxSocPpm);
        }
        bytes memory signature = Signing.signMandate(key, address(market), m);
        vm.prank(_stranger(seed >> 64));
        try market.submitMandate(m, signature) {
            _expectSuccess("submitMandate", expected);
            ghostMandate[id] = Mandate(m.maxBuyPrice, m.minSellPrice, m.validUntil, m.nonce);
        } catch (bytes memory got) {
            _expectRevert("submitMandate", expected, got);
        }
    }

    /// @notice The owner revokes its mandate directly or by a signed revocation that
    /// anyone relays, sometimes naming an older nonce.
    function revokeMandate(uint256 seed, bool signed) external {
        if (ghostCount < 2) return;
        uint32 id = uint32(1 + seed % (ghostCount - 1));
        Mandate memory m = ghostMandate[id];
        uint64 nonce = m.nonce > 1 && seed % 3 == 0 ? m.nonce - 1 : m.nonce;
        bytes memory expected;
        if (m.nonce == 0) expected = abi.encodeWithSelector(EnergyMarket.NoMandate.selector, id);
        else if (nonce != m.nonce) expected = abi.encodeWithSelector(EnergyMarket.StaleMandateNonce.selector, id, m.nonce, nonce);
        if (signed) {
            bytes memory signature = Signing.signRevocation(_ghostKey[id], address(market), id, nonce);
            vm.prank(_stranger(seed >> 64));
            try market.revokeMandate(id, nonce, signature) {
                _expectSuccess("revokeMandate(signed)", expected);
                ghostMandate[id].validUntil = 0;
            } catch (bytes memory got) {
                _expectRevert("revokeMandate(signed)", expected, got);
            }
        } else {
            // Revokes whatever mandate is in force, so only "none" can go wrong.
            if (m.nonce != 0) expected = "";
            vm.prank(ghostOwner[id]);
            try market.revokeMandate(id) {
                _expectSuccess("revokeMandate", expected);
                ghostMandate[id].validUntil = 0;
            } catch (bytes memory got) {
                _expectRevert("revokeMandate", expected, got);
            }
        }
    }

    /// @notice The oracle submits a correctly priced, conserving, authorised settlement
    /// for the next interval; the market must accept it exactly when it fits the
    /// capacity in force.
    function settle(uint256 seed) external {
        (SettlementBuilder.Draft memory d, bool any) = _draft(seed, type(uint32).max);
        if (!any) return;
        // An interval in which nobody traded is settled too, with no entries.
        if (seed % 13 == 0) d = _emptyDraft(seed);
        _authorise(d, seed, type(uint256).max);
        if (seed % 4 == 1) {
            // Random capacities rarely land next to the totals; set them there, one Wh
            // either side, so an off-by-one in the capacity check cannot hide.
            uint64 importWh = d.s.gridImportWh + uint64(seed >> 4) % 3;
            uint64 exportWh = d.s.gridExportWh + uint64(seed >> 6) % 3;
            importWh = importWh > 0 ? importWh - 1 : 0;
            exportWh = exportWh > 0 ? exportWh - 1 : 0;
            vm.prank(gridOperator);
            market.setCapacity(d.s.interval, importWh, exportWh);
            _ghostOverride[d.s.interval] = Capacity(importWh, exportWh, true);
        }
        (uint64 importCap, uint64 exportCap) = ghostCapacity(d.s.interval);
        bytes memory expected;
        if (d.s.gridImportWh > importCap) {
            expected = abi.encodeWithSelector(
                EnergyMarket.ImportCapacityExceeded.selector, d.s.interval, d.s.gridImportWh, importCap
            );
        } else if (d.s.gridExportWh > exportCap) {
            expected = abi.encodeWithSelector(
                EnergyMarket.ExportCapacityExceeded.selector, d.s.interval, d.s.gridExportWh, exportCap
            );
        }
        _submit("settle", d, expected);
    }

    /// @notice The oracle submits a settlement broken in one way; the market must reject
    /// it with the error that names that check.
    function settleInvalid(uint256 seed, uint8 kind) external {
        uint32 inactive = type(uint32).max;
        kind %= 15; // 14 is two kinds: unused orders, missing order
        if (kind == 9) {
            inactive = _pick(seed, false);
            if (inactive == type(uint32).max) kind = 0; // no inactive participant yet
        }
        (SettlementBuilder.Draft memory d, bool any) = _draft(seed, inactive);
        if (!any) return;
        // Rounding every entry one way re-rounds the amounts after authorising them,
        // which a pay-as-bid settlement's orders (they price their entries) do not allow.
        if (kind == 8) d.s.payAsBid = false;
        if (kind == 13) d.s.payAsBid = true;
        _fitCapacity(d);
        _authorise(d, seed, type(uint256).max);
        bytes memory expected;
        uint64 next = d.s.interval;
        uint256 r = uint256(keccak256(abi.encode(seed, "invalid")));
        if (kind == 0) {
            // A replay of a settled interval, or one ahead of its turn.
            d.s.interval = r % 2 == 0 && next > FIRST_INTERVAL
                ? next - 1 - uint64(r % (next - FIRST_INTERVAL))
                : next + 1 + uint64(r % 5);
            expected = abi.encodeWithSelector(EnergyMarket.IntervalOutOfOrder.selector, next, d.s.interval);
        } else if (kind == 1) {
            // An interval without entries that still moves the grid's wallet or declares grid energy.
            d = _emptyDraft(seed);
            if (r % 2 == 0) {
                d.s.gridAmount = int128(int256(1 + r % 1000)) * (r % 3 == 0 ? int128(1) : -1);
                expected = abi.encodeWithSelector(EnergyMarket.MoneyNotConserved.selector, next, 0, d.s.gridAmount);
            } else {
                d.s.gridExportWh = 1 + uint64(r % 1000);
                expected = abi.encodeWithSelector(
                    EnergyMarket.GridEnergyMismatch.selector, next, 0, 0, 0, d.s.gridExportWh
                );
            }
        } else if (kind == 2) {
            if (r % 2 == 0 || d.s.sellPrice == 0) d.s.p2pPrice = d.s.buyPrice + 1 + uint64(r % 100);
            else d.s.p2pPrice = d.s.sellPrice - 1 - uint64(r % d.s.sellPrice);
            expected = abi.encodeWithSelector(
                EnergyMarket.PriceOutOfRange.selector, d.s.p2pPrice, d.s.sellPrice, d.s.buyPrice
            );
        } else if (kind == 3) {
            // The grid listed as an entry (it never is one), or a participant twice.
            uint256 j = r % d.ids.length;
            uint32 previous = j == 0 ? 0 : d.ids[j - 1];
            d.ids[j] = previous;
            expected = abi.encodeWithSelector(EnergyMarket.ParticipantsNotAscending.selector, previous, previous);
        } else if (kind == 4) {
            // Over- or undercharges one participant by >= 2 units, the grid takes the
            // difference: money still sums to zero. Its authorisation is checked first, so
            // an overcharged buyer gets an order that covers it. No limit lets a seller (or
            // a participant without energy) pay, and a pay-as-bid order prices its entry,
            // so those are only undercharged, which every limit allows.
            bool credit = r % 3 == 0 || d.s.payAsBid || d.gridWh[0] + d.p2pWh[0] <= 0;
            int256 off = int256(2 + r % 1000) * (credit ? int256(1) : -1);
            d.amount[0] += off;
            d.s.gridAmount -= int128(off);
            if (off < 0) _authorise(d, seed, 0);
            expected = abi.encodeWithSelector(
                EnergyMarket.PaymentMismatch.selector, d.ids[0], d.amount[0], d.exactMilli[0]
            );
        } else if (kind == 5) {
            // One participant buys (or sells) P2P energy nobody sold (bought), paying
            // (paid) for it correctly and authorised to.
            uint256 j = r % d.ids.length;
            int256 extra = int256(1 + r % 5000) * (d.gridWh[j] + d.p2pWh[j] >= 0 ? int256(1) : -1);
            d.p2pWh[j] += extra;
            d.price(seed);
            _authorise(d, seed, type(uint256).max);
            expected = abi.encodeWithSelector(EnergyMarket.P2PEnergyNotConserved.selector, next, extra);
        } else if (kind == 6) {
            uint64 importWh = d.s.gridImportWh;
            d.s.gridImportWh += 1 + uint64(r % 1000);
            expected = abi.encodeWithSelector(
                EnergyMarket.GridEnergyMismatch.selector, next, importWh, d.s.gridExportWh, d.s.gridImportWh, d.s.gridExportWh
            );
        } else if (kind == 7) {
            int256 participantsTotal = -int256(d.s.gridAmount);
            d.s.gridAmount += int128(int256(1 + r % 1000));
            expected = abi.encodeWithSelector(
                EnergyMarket.MoneyNotConserved.selector, next, participantsTotal, d.s.gridAmount
            );
        } else if (kind == 8) {
            expected = _roundAllOneWay(d, r);
            if (expected.length == 0) return; // too few inexact entries to break the grid's side
            _authorise(d, seed, type(uint256).max);
        } else if (kind == 9) {
            expected = abi.encodeWithSelector(ParticipantRegistry.InactiveParticipant.selector, inactive);
        } else if (kind == 10) {
            expected = _dropAuthorisation(d, r);
            if (expected.length == 0) return; // every participant's mandate covers its entry
        } else if (kind == 11) {
            expected = _forgeOrder(d, seed, r);
        } else if (kind == 12) {
            expected = _breakOrderLimit(d, seed, r);
            if (expected.length == 0) return; // this entry leaves no room to break that limit
        } else if (kind == 13) {
            expected = _priceOrderAtP2PPrice(d, seed, r);
            if (expected.length == 0) return; // no order entry whose own price differs by a unit
            ++payAsBidMispriced;
        } else if (r % 2 == 0) {
            // Orders beyond those the entries claim.
            uint256 extra = 1 + (r >> 8) % 3;
            EnergyMarket.OrderAuth[] memory orders = new EnergyMarket.OrderAuth[](d.orders.length + extra);
            for (uint256 i = 0; i < orders.length; ++i) {
                orders[i] = i < d.orders.length
                    ? d.orders[i]
                    : Signing.signOrder(_strangerKey(r), address(market), 1, next, Signing.Order(0, 1, 1, 0, uint64(i)));
            }
            d.orders = orders;
            expected = abi.encodeWithSelector(EnergyMarket.UnusedOrders.selector, extra);
        } else {
            // An entry claims an order the settlement does not carry: the last one is
            // dropped (dropping an earlier one would hand its successor to this entry).
            _authorise(d, seed, r % d.ids.length);
            uint32 id = d.orderIds[d.orders.length - 1];
            _removeOrder(d, d.orders.length - 1);
            expected = abi.encodeWithSelector(EnergyMarket.MissingOrder.selector, id);
        }
        _submit("settleInvalid", d, expected);
    }

    /// @notice Anyone but the oracle submits a valid settlement; it must be refused.
    function settleAsStranger(uint256 seed, uint256 callerSeed) external {
        (SettlementBuilder.Draft memory d, bool any) = _draft(seed, type(uint32).max);
        if (!any) return;
        _fitCapacity(d);
        _authorise(d, seed, type(uint256).max);
        address caller = _stranger(callerSeed);
        if (caller == oracle) return;
        uint64 before = market.nextInterval();
        bytes memory expected = _unauthorized(caller, market.ORACLE_ROLE());
        uint256[] memory words = d.entries();
        vm.prank(caller);
        try market.settle(d.s, words, d.orders) {
            revert Surprise("settle by non-oracle", expected, "");
        } catch (bytes memory got) {
            _expectRevert("settle by non-oracle", expected, got);
        }
        _equal("nextInterval after refused settle", before, market.nextInterval());
    }

    /// @notice A stranger tries privileged actions and a withdrawal.
    function strangerAction(uint256 seed, uint8 which) external {
        address caller = _randomAddress(seed);
        for (uint32 id = 0; id < ghostCount; ++id) {
            if (ghostOwner[id] == caller) return;
        }
        if (caller == admin || caller == gridOperator || caller == oracle) return;
        bytes memory expected;
        bytes memory call;
        which %= 6;
        // Everything is read before the prank: it applies to the very next call.
        if (which == 0) {
            expected = _unauthorized(caller, market.DEFAULT_ADMIN_ROLE());
            call = abi.encodeCall(market.register, (caller, 0, "intruder"));
        } else if (which == 1) {
            expected = _unauthorized(caller, market.DEFAULT_ADMIN_ROLE());
            call = abi.encodeCall(market.updateParticipant, (uint32(seed % ghostCount), 0, seed % 2 == 0));
        } else if (which == 2) {
            expected = _unauthorized(caller, market.GRID_OPERATOR_ROLE());
            call = abi.encodeCall(market.setCapacity, (market.nextInterval(), type(uint64).max, type(uint64).max));
        } else if (which == 3) {
            expected = _unauthorized(caller, market.DEFAULT_ADMIN_ROLE());
            call = abi.encodeCall(market.grantRole, (market.ORACLE_ROLE(), caller));
        } else if (which == 4) {
            uint32 id = uint32(seed % ghostCount);
            expected = abi.encodeWithSelector(EnergyMarket.NotParticipantOwner.selector, id, caller);
            call = abi.encodeWithSignature("revokeMandate(uint32)", id);
        } else {
            expected = abi.encodeWithSelector(ParticipantRegistry.UnknownAccount.selector, caller);
            call = abi.encodeCall(market.withdraw, (1 + seed % 1e9));
        }
        vm.prank(caller);
        (bool ok, bytes memory got) = address(market).call(call);
        if (ok) revert Surprise("stranger action accepted", expected, "");
        _expectRevert("stranger action", expected, got);
    }

    // ==================================================================== views

    /// @notice The capacity in force for `interval` according to the model.
    function ghostCapacity(uint64 interval) public view returns (uint64 importWh, uint64 exportWh) {
        Capacity memory c = _ghostOverride[interval];
        if (!c.set) c = ghostDefault;
        return (c.importWh, c.exportWh);
    }

    function settledCount() external view returns (uint256) {
        return _settled.length;
    }

    function settled(uint256 i) external view returns (Settled memory) {
        return _settled[i];
    }

    function poolSize() external pure returns (uint256) {
        return POOL;
    }

    // ========================================================= settlement drafts

    /// @dev A priced settlement for the next interval over random active participants
    /// (plus `include`, if it names one), energies sometimes beyond any capacity. Each
    /// participant buys (grid and P2P energy in) or sells (both out), as a clearing
    /// does; one that imported and resold could not be authorised by any limit price.
    function _draft(uint256 seed, uint32 include)
        internal
        view
        returns (SettlementBuilder.Draft memory d, bool any)
    {
        uint32[] memory ids = new uint32[](MAX_ENTRIES);
        uint256 n;
        for (uint32 id = 1; id < ghostCount; ++id) {
            bool chosen = uint256(keccak256(abi.encode(seed, id))) % 3 != 0;
            // One slot stays free for `include`, which must be in whatever else is chosen.
            if (id == include || (chosen && ghostActive[id] && n < MAX_ENTRIES - 1)) ids[n++] = id;
        }
        if (n == 0) return (d, false);
        assembly {
            mstore(ids, n)
        }
        d.ids = ids;
        d.gridWh = new int256[](n);
        d.p2pWh = new int256[](n);
        // Small energies usually fit the capacity; large ones often do not.
        int256 scale = seed % 2 == 0 ? int256(3_000) : int256(30_000);
        int256 bought;
        uint256 sellers;
        for (uint256 i = 0; i < n; ++i) {
            uint256 r = uint256(keccak256(abi.encode(seed, i, "energy")));
            int256 direction = r % 2 == 0 ? int256(1) : -1;
            d.gridWh[i] = direction * int256((r >> 8) % uint256(scale + 1));
            if (direction > 0) {
                d.p2pWh[i] = int256((r >> 128) % 10_001);
                bought += d.p2pWh[i];
            } else {
                ++sellers;
            }
        }
        // Sellers share what the buyers bought; with no seller nobody trades P2P.
        if (sellers == 0) {
            for (uint256 i = 0; i < n; ++i) {
                d.p2pWh[i] = 0;
            }
        } else {
            int256 share = bought / int256(sellers);
            int256 left = bought;
            uint256 seen;
            for (uint256 i = 0; i < n; ++i) {
                uint256 r = uint256(keccak256(abi.encode(seed, i, "energy")));
                if (r % 2 == 0) continue;
                ++seen;
                d.p2pWh[i] = seen == sellers ? -left : -share;
                left -= share;
            }
        }
        _header(d, seed);
        d.price(seed >> 8);
        return (d, true);
    }

    /// @dev The next interval's header: random tariffs, a P2P price between them, and
    /// pay-as-bid pricing half the time.
    function _header(SettlementBuilder.Draft memory d, uint256 seed) internal view {
        uint256 p = uint256(keccak256(abi.encode(seed, "prices")));
        d.s.interval = market.nextInterval();
        d.s.inputsHash = keccak256(abi.encode(seed));
        d.s.buyPrice = uint64(p % 1_000_001);
        d.s.sellPrice = uint64((p >> 64) % (uint256(d.s.buyPrice) + 1));
        d.s.p2pPrice = d.s.sellPrice + uint64((p >> 128) % (uint256(d.s.buyPrice - d.s.sellPrice) + 1));
        d.s.payAsBid = (p >> 192) % 2 == 1;
    }

    /// @dev A settlement of the next interval without entries: nobody traded.
    function _emptyDraft(uint256 seed) internal view returns (SettlementBuilder.Draft memory d) {
        d.ids = new uint32[](0);
        d.gridWh = new int256[](0);
        d.p2pWh = new int256[](0);
        _header(d, seed);
        d.price(seed);
    }

    /// @dev Scales energies down until the settlement fits the capacity in force, so
    /// that a test of another check is not stopped by capacity first.
    function _fitCapacity(SettlementBuilder.Draft memory d) internal view {
        (uint64 importCap, uint64 exportCap) = ghostCapacity(d.s.interval);
        while (d.s.gridImportWh > importCap || d.s.gridExportWh > exportCap) {
            for (uint256 i = 0; i < d.ids.length; ++i) {
                d.gridWh[i] /= 2;
            }
            d.price(uint256(d.s.inputsHash));
        }
    }

    /// @dev Authorises every entry: by the participant's mandate when the model says it
    /// covers the entry (and the seed agrees), else by an order its owner signs now.
    /// Entry `forceOrder` always gets an order. In a pay-as-bid settlement the orders
    /// price their entries, so their limits are chosen first and the draft priced again.
    function _authorise(SettlementBuilder.Draft memory d, uint256 seed, uint256 forceOrder) internal view {
        uint256 n = d.ids.length;
        EnergyMarket.OrderAuth[] memory orders = new EnergyMarket.OrderAuth[](n);
        uint32[] memory orderIds = new uint32[](n);
        d.byOrder = new bool[](n);
        d.limits = new uint64[](n);
        for (uint256 i = 0; i < n; ++i) {
            uint256 r = uint256(keccak256(abi.encode(seed, i, "auth")));
            if (i == forceOrder || r % 3 == 0 || _mandateError(d, i).length != 0) _orderFor(d, i, r);
        }
        // Re-rounding can move a mandate entry's amount a unit past its mandate: such
        // entries get orders too, and the draft is priced again, until none is left
        // (each round adds an order, so this ends).
        for (bool again = d.s.payAsBid; again;) {
            d.price(seed);
            again = false;
            for (uint256 i = 0; i < n; ++i) {
                if (d.byOrder[i] || _mandateError(d, i).length == 0) continue;
                _orderFor(d, i, uint256(keccak256(abi.encode(seed, i, "auth"))));
                again = true;
            }
        }
        uint256 count;
        for (uint256 i = 0; i < n; ++i) {
            if (!d.byOrder[i]) continue;
            uint256 r = uint256(keccak256(abi.encode(seed, i, "auth")));
            orderIds[count] = d.ids[i];
            orders[count++] = Signing.signOrder(
                _ghostKey[d.ids[i]], address(market), d.ids[i], d.s.interval, _coveringOrder(d, i, r)
            );
        }
        assembly {
            mstore(orders, count)
            mstore(orderIds, count)
        }
        d.orders = orders;
        d.orderIds = orderIds;
    }

    /// @dev Marks entry `i` as authorised by an order; under pay-as-bid picks the order's
    /// limit price, which then prices the entry. Whatever limit a buyer that only buys
    /// from peers bids, it pays no more (min(limit, import tariff)); one that also imports
    /// pays the import tariff for that energy, so it only signs if it bids at least
    /// that. Sellers alike. Limits also stay on the far side of the settlement's P2P
    /// price (as in an auction, where it lies between the matched bids and asks), so an
    /// order would also authorise its entry at that price (see _priceOrderAtP2PPrice).
    function _orderFor(SettlementBuilder.Draft memory d, uint256 i, uint256 r) internal pure {
        d.byOrder[i] = true;
        if (!d.s.payAsBid) return;
        uint256 x = r >> 96;
        if (d.gridWh[i] + d.p2pWh[i] >= 0) {
            uint256 floor = d.gridWh[i] > 0 ? d.s.buyPrice : d.s.p2pPrice;
            d.limits[i] = uint64(floor + (x % 4 == 0 ? 0 : x % (uint256(d.s.buyPrice) / 2 + 1000)));
        } else {
            uint256 ceiling = d.gridWh[i] < 0 ? d.s.sellPrice : d.s.p2pPrice;
            d.limits[i] = uint64(x % 4 == 0 ? ceiling : x % (ceiling + 1));
        }
    }

    /// @dev An order that allows entry `i`: its side, at least its energy, a limit price
    /// its wallet change respects (under pay-as-bid the one that priced it), not yet expired.
    function _coveringOrder(SettlementBuilder.Draft memory d, uint256 i, uint256 r)
        internal
        view
        returns (Signing.Order memory o)
    {
        int256 net = d.gridWh[i] + d.p2pWh[i];
        o.side = net >= 0 ? Signing.BUY : Signing.SELL;
        uint256 energy = uint256(net >= 0 ? net : -net);
        o.energyWh = uint64(energy + r % 100);
        if (d.s.payAsBid) {
            o.limitPrice = d.limits[i];
        } else if (net > 0) {
            int256 costMilli = -d.amount[i] * 1000;
            uint256 limit = costMilli <= 0 ? 0 : (uint256(costMilli) + energy - 1) / energy;
            o.limitPrice = uint64(limit + (r >> 8) % 1000);
        } else if (net < 0) {
            int256 revenueMilli = d.amount[i] * 1000;
            uint256 limit = revenueMilli <= 0 ? 0 : uint256(revenueMilli) / energy;
            uint256 slack = (r >> 8) % 1000;
            o.limitPrice = uint64(limit > slack ? limit - slack : 0);
        }
        o.expiry = uint64(block.timestamp + (r >> 32) % 1 hours);
        o.nonce = uint64((r >> 64) % (1 << 56));
    }

    /// @dev Why the participant's mandate does not authorise entry `i`, as the contract
    /// must say it ("" if it does): none, revoked, expired, or a price beyond its limit
    /// by a unit or more (amounts are whole units, so < 1 unit over is rounding).
    function _mandateError(SettlementBuilder.Draft memory d, uint256 i) internal view returns (bytes memory) {
        uint32 id = d.ids[i];
        Mandate memory m = ghostMandate[id];
        if (block.timestamp > m.validUntil) {
            if (m.nonce == 0) return abi.encodeWithSelector(EnergyMarket.NoMandate.selector, id);
            if (m.validUntil == 0) return abi.encodeWithSelector(EnergyMarket.RevokedMandate.selector, id, m.nonce);
            return abi.encodeWithSelector(EnergyMarket.MandateExpired.selector, id, m.validUntil, block.timestamp);
        }
        int256 net = d.gridWh[i] + d.p2pWh[i];
        if (net >= 0) {
            int256 limitMilli = net * int256(uint256(m.maxBuyPrice));
            int256 costMilli = -d.amount[i] * 1000;
            if (costMilli >= limitMilli + 1000) {
                return abi.encodeWithSelector(EnergyMarket.MandatePriceExceeded.selector, id, costMilli, limitMilli);
            }
        } else {
            int256 limitMilli = -net * int256(uint256(m.minSellPrice));
            int256 revenueMilli = d.amount[i] * 1000;
            if (revenueMilli <= limitMilli - 1000) {
                return abi.encodeWithSelector(
                    EnergyMarket.MandatePriceBelowMinimum.selector, id, revenueMilli, limitMilli
                );
            }
        }
        return "";
    }

    /// @dev A rogue oracle: settles a participant whose mandate does not cover the entry
    /// without its order. Returns the rejection, or "" if every mandate covers.
    function _dropAuthorisation(SettlementBuilder.Draft memory d, uint256 r) internal view returns (bytes memory) {
        // Half the time look for a mandate in force whose limits the entry breaks first:
        // missing or expired mandates are far more common and would hide that check.
        for (uint256 k = 0; k < 2 * d.ids.length; ++k) {
            uint256 i = (r + k) % d.ids.length;
            bytes memory rejection = _mandateError(d, i);
            if (rejection.length == 0) continue;
            bytes4 check = bytes4(rejection);
            bool priceCheck = check == EnergyMarket.MandatePriceExceeded.selector
                || check == EnergyMarket.MandatePriceBelowMinimum.selector;
            if (k < d.ids.length && r % 2 == 0 && !priceCheck) continue;
            if (d.byOrder[i]) _removeOrder(d, _orderIndex(d, d.ids[i]));
            d.byOrder[i] = false;
            return rejection;
        }
        return "";
    }

    /// @dev One entry's order signed by a stranger's key, signed by the owner for the
    /// previous interval (a replay), or altered after signing.
    function _forgeOrder(SettlementBuilder.Draft memory d, uint256 seed, uint256 r) internal view returns (bytes memory) {
        uint256 i = r % d.ids.length;
        uint32 id = d.ids[i];
        _authorise(d, seed, i);
        uint256 j = _orderIndex(d, id);
        Signing.Order memory o = _coveringOrder(d, i, r);
        uint64 interval = d.s.interval;
        uint256 key = _ghostKey[id];
        uint256 variant = (r >> 16) % 3;
        if (variant == 0) key = _strangerKey(r);
        if (variant == 1) interval -= 1 + uint64((r >> 24) % 3);
        d.orders[j] = Signing.signOrder(key, address(market), id, interval, o);
        if (variant == 2) d.orders[j].packed ^= 1 << (184 + (r >> 24) % 64); // a bit of the energy
        // Whom the contract must recover: the signature over the digest of what rides in
        // the settlement for this interval (hashed here independently of PackedOrder).
        bytes32 digest = Signing.orderDigest(address(market), id, d.s.interval, _unpack(d.orders[j].packed));
        address signer = _recover(digest, d.orders[j].r, d.orders[j].vs);
        return abi.encodeWithSelector(EnergyMarket.BadOrderSignature.selector, id, signer);
    }

    /// @dev One entry's order, properly signed, but expired, too small, on the wrong
    /// side or with a limit price the entry breaks by a unit or more.
    function _breakOrderLimit(SettlementBuilder.Draft memory d, uint256 seed, uint256 r)
        internal
        view
        returns (bytes memory expected)
    {
        uint256 i = r % d.ids.length;
        uint32 id = d.ids[i];
        _authorise(d, seed, i);
        Signing.Order memory o = _coveringOrder(d, i, r);
        int256 net = d.gridWh[i] + d.p2pWh[i];
        uint256 energy = uint256(net >= 0 ? net : -net);
        uint256 variant = (r >> 16) % 4;
        if (variant == 0) {
            if (block.timestamp == 0) return "";
            o.expiry = uint64((r >> 24) % block.timestamp);
            expected = abi.encodeWithSelector(EnergyMarket.OrderExpired.selector, id, o.expiry, block.timestamp);
        } else if (variant == 1) {
            if (energy == 0) return "";
            o.energyWh = uint64(energy - 1 - (r >> 24) % energy);
            expected = abi.encodeWithSelector(EnergyMarket.OrderQuantityExceeded.selector, id, energy, o.energyWh);
        } else if (variant == 2) {
            if (net == 0) return "";
            o.side = net > 0 ? Signing.SELL : Signing.BUY;
            expected = abi.encodeWithSelector(EnergyMarket.OrderSideMismatch.selector, id, o.side, net);
        } else if (net > 0) {
            int256 costMilli = -d.amount[i] * 1000;
            if (costMilli < 1000) return "";
            // Largest limit the cost still exceeds by a whole unit.
            o.limitPrice = uint64(uint256(costMilli - 1000) / energy);
            int256 limitMilli = net * int256(uint256(o.limitPrice));
            expected = abi.encodeWithSelector(EnergyMarket.OrderPriceExceeded.selector, id, costMilli, limitMilli);
        } else if (net < 0) {
            int256 revenueMilli = d.amount[i] * 1000;
            o.limitPrice = uint64(uint256(revenueMilli + 1000) / energy + 1);
            int256 limitMilli = -net * int256(uint256(o.limitPrice));
            expected = abi.encodeWithSelector(EnergyMarket.OrderPriceBelowLimit.selector, id, revenueMilli, limitMilli);
        } else {
            return "";
        }
        d.orders[_orderIndex(d, id)] = Signing.signOrder(_ghostKey[id], address(market), id, d.s.interval, o);
    }

    /// @dev A pay-as-bid settlement with one order entry paid at the settlement's P2P
    /// price instead of its order's own price (the order would allow either); the grid
    /// takes the difference, so money still sums to zero. "" if no order entry's P2P
    /// energy is priced a unit or more away.
    function _priceOrderAtP2PPrice(SettlementBuilder.Draft memory d, uint256 seed, uint256 r)
        internal
        view
        returns (bytes memory)
    {
        uint256 n = d.ids.length;
        for (uint256 k = 0; k < n; ++k) {
            uint256 i = (r + k) % n;
            if (d.p2pWh[i] == 0) continue;
            _authorise(d, seed, i);
            int256 tariff = int256(uint256(d.gridWh[i] > 0 ? d.s.buyPrice : d.s.sellPrice));
            int256 atP2PPrice = -(d.gridWh[i] * tariff) - d.p2pWh[i] * int256(uint256(d.s.p2pPrice));
            int256 amount = SettlementBuilder.floorDiv(atP2PPrice, 1000);
            int256 error_ = amount * 1000 - d.exactMilli[i];
            if (error_ > -1000 && error_ < 1000) continue;
            d.s.gridAmount -= int128(amount - d.amount[i]);
            d.amount[i] = amount;
            return abi.encodeWithSelector(EnergyMarket.PaymentMismatch.selector, d.ids[i], amount, d.exactMilli[i]);
        }
        return "";
    }

    /// @dev Rounds every entry the same way so each is within a unit but the grid's
    /// side, which absorbs them all, is not. Needs two or more inexact entries.
    function _roundAllOneWay(SettlementBuilder.Draft memory d, uint256 r) internal pure returns (bytes memory) {
        int256 total;
        int256 roundingMilli;
        for (uint256 i = 0; i < d.ids.length; ++i) {
            d.amount[i] = SettlementBuilder.floorDiv(d.exactMilli[i], 1000);
            if (r % 2 == 1 && d.amount[i] * 1000 != d.exactMilli[i]) d.amount[i] += 1;
            roundingMilli += d.amount[i] * 1000 - d.exactMilli[i];
            total += d.amount[i];
        }
        if (roundingMilli > -1000 && roundingMilli < 1000) return "";
        d.s.gridAmount = int128(-total);
        return abi.encodeWithSelector(
            EnergyMarket.PaymentMismatch.selector, uint32(0), -total, SettlementBuilder.gridExactMilli(d)
        );
    }

    /// @dev Sends `d` as the oracle; on success checks what the contract emitted and
    /// moves the model's wallets by the amounts the builder computed.
    function _submit(string memory action, SettlementBuilder.Draft memory d, bytes memory expected) internal {
        uint64 next = market.nextInterval();
        (uint64 importCap, uint64 exportCap) = ghostCapacity(next);
        uint256[] memory words = d.entries();
        // Recording stays on across actions: drop earlier logs so only this call's are read.
        vm.recordLogs();
        vm.getRecordedLogs();
        vm.prank(oracle);
        try market.settle(d.s, words, d.orders) {
            _expectSuccess(action, expected);
            _equal("nextInterval after settle", next + 1, market.nextInterval());
            _equal("times interval settled", 0, timesSettled[next]);
            ++timesSettled[next];
            ++oracleSettlements;
            (uint256 emittedImport, uint256 emittedExport) = _checkLogs(next, d.ids.length);
            uint256 authorised = _countAuthorised(d);
            if (d.s.payAsBid && d.orders.length > 0) ++payAsBidSettled;
            if (d.ids.length == 0) ++emptySettled;
            _settled.push(Settled(next, emittedImport, emittedExport, importCap, exportCap, authorised, d.ids.length));
            for (uint256 i = 0; i < d.ids.length; ++i) {
                ghostBalance[d.ids[i]] += d.amount[i];
            }
            ghostBalance[0] += d.s.gridAmount;
        } catch (bytes memory got) {
            _expectRevert(action, expected, got);
            _equal("nextInterval after rejected settle", next, market.nextInterval());
            ++rejectedSettlements;
            ++rejections[bytes4(got)];
        }
    }

    /// @dev Entries the model finds authorised: an order of the participant rides in
    /// the settlement, or its mandate in force covers the entry.
    function _countAuthorised(SettlementBuilder.Draft memory d) internal returns (uint256 count) {
        for (uint256 i = 0; i < d.ids.length; ++i) {
            if (d.byOrder[i]) ++ordersSettled;
            else if (_mandateError(d, i).length == 0) ++mandateEntriesSettled;
            else continue;
            ++count;
        }
    }

    /// @dev Exactly one IntervalSettled, for the expected interval, then one
    /// ParticipantSettled per entry; returns the grid energy the contract reported.
    function _checkLogs(uint64 interval, uint256 entries) internal returns (uint256 importWh, uint256 exportWh) {
        uint256 intervals;
        uint256 participants;
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].emitter != address(market)) continue;
            bytes32 topic = logs[i].topics[0];
            if (topic == EnergyMarket.IntervalSettled.selector) {
                ++intervals;
                _equal("IntervalSettled interval", interval, uint256(logs[i].topics[1]));
                (,,,, importWh, exportWh,,) = abi.decode(
                    logs[i].data, (bytes32, uint256, uint256, uint256, uint256, uint256, int256, uint256)
                );
            } else if (topic == EnergyMarket.ParticipantSettled.selector) {
                ++participants;
            }
        }
        _equal("IntervalSettled events", 1, intervals);
        _equal("ParticipantSettled events", entries, participants);
    }

    // =================================================================== helpers

    function _orderIndex(SettlementBuilder.Draft memory d, uint32 id) internal pure returns (uint256) {
        for (uint256 j = 0; j < d.orderIds.length; ++j) {
            if (d.orderIds[j] == id) return j;
        }
        revert ModelMismatch("order for participant", int256(uint256(id)), -1);
    }

    function _removeOrder(SettlementBuilder.Draft memory d, uint256 j) internal pure {
        EnergyMarket.OrderAuth[] memory orders = new EnergyMarket.OrderAuth[](d.orders.length - 1);
        uint32[] memory orderIds = new uint32[](d.orders.length - 1);
        for (uint256 k = 0; k < orders.length; ++k) {
            (orders[k], orderIds[k]) = (d.orders[k < j ? k : k + 1], d.orderIds[k < j ? k : k + 1]);
        }
        (d.orders, d.orderIds) = (orders, orderIds);
    }

    function _unpack(uint256 word) internal pure returns (Signing.Order memory o) {
        o.side = uint8(word >> 248);
        o.energyWh = uint64(word >> 184);
        o.limitPrice = uint64(word >> 120);
        o.expiry = uint64(word >> 56);
        o.nonce = uint64(word & ((1 << 56) - 1));
    }

    /// @dev ecrecover of an EIP-2098 compact signature; address(0) when none recovers.
    function _recover(bytes32 digest, bytes32 r, bytes32 vs) internal pure returns (address) {
        bytes32 s = vs & bytes32(uint256(type(uint256).max >> 1));
        uint8 v = uint8(uint256(vs) >> 255) + 27;
        return ecrecover(digest, v, r, s);
    }

    /// @dev A random active (or, with active == false, inactive) participant, or max.
    function _pick(uint256 seed, bool active) internal view returns (uint32) {
        if (ghostCount <= 1) return type(uint32).max;
        uint32 start = uint32(1 + seed % (ghostCount - 1));
        for (uint32 k = 0; k < ghostCount - 1; ++k) {
            uint32 id = 1 + (start - 1 + k) % (ghostCount - 1);
            if (ghostActive[id] == active) return id;
        }
        return type(uint32).max;
    }

    /// @dev Anyone who is not the oracle: the admin, the grid operator, a participant or nobody.
    function _stranger(uint256 seed) internal view returns (address) {
        uint256 choice = seed % (POOL + 3);
        if (choice == POOL) return admin;
        if (choice == POOL + 1) return gridOperator;
        if (choice == POOL + 2) return _randomAddress(seed);
        return pool[choice];
    }

    function _randomAddress(uint256 seed) internal pure returns (address) {
        return address(uint160(uint256(keccak256(abi.encode(seed, "stranger")))));
    }

    function _strangerKey(uint256 seed) internal pure returns (uint256) {
        return 0xBAD000 + seed % 1000;
    }

    function _unknown(uint32 id) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(ParticipantRegistry.UnknownParticipant.selector, id);
    }

    function _unauthorized(address caller, bytes32 role) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, caller, role);
    }

    function _expectSuccess(string memory action, bytes memory expected) internal pure {
        if (expected.length != 0) revert Surprise(action, expected, "");
    }

    function _expectRevert(string memory action, bytes memory expected, bytes memory got) internal pure {
        if (expected.length == 0 || keccak256(got) != keccak256(expected)) revert Surprise(action, expected, got);
    }

    function _equal(string memory what, uint256 expected, uint256 actual) internal pure {
        if (expected != actual) revert ModelMismatch(what, int256(expected), int256(actual));
    }
}
