// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {GridToken} from "../src/GridToken.sol";
import {MarketEvents} from "../src/MarketEvents.sol";
import {MarketStorage} from "../src/MarketStorage.sol";
import {DisputeModule} from "../src/modules/DisputeModule.sol";
import {EntryChecks} from "../src/modules/EntryChecks.sol";
import {MandatesModule} from "../src/modules/MandatesModule.sol";
import {MarketFixture} from "./MarketFixture.sol";
import {SettlementBuilder} from "./SettlementBuilder.sol";
import {Signing} from "./Signing.sol";
import {vm} from "./Vm.sol";

/// @dev The only thing forge calls during the invariant runs. Each action plays one
/// actor (admin, oracle honest or rogue, grid operator, a home, an auditor, a
/// stranger), predicts from its own model whether the market must accept or reject and
/// with which error, and reverts on any surprise (forge runs with fail_on_revert). The
/// model is written from the documented rules: terms (mirrored as the grid operator
/// scheduled them), each home's signed intent and its meter's reading (drawn here, the
/// truth), so a wallet that matches it moved only as those explain.
contract MarketHandler is MarketFixture {
    using SettlementBuilder for SettlementBuilder.Draft;

    uint256 internal constant POOL = 8;
    uint32 internal constant ORDERS_ONLY = 7; // homes from this id on never sign a mandate
    uint64 internal constant TIME_MAX = (1 << 40) - 1; // the contract keeps validity in 40 bits // owner and meter keys of homes 1..POOL
    address public constant AUDITOR = address(0xA0D1);
    int256 internal constant MAX_READING = 4_000;

    // ---- model ----
    struct Terms {
        uint64 from;
        uint64 importPrice;
        uint64 peakImportPrice;
        uint64 exportPrice;
        uint64 fee;
        uint32 peakHours;
        bool payAsBid;
    }

    struct Mandate {
        uint64 maxBuy;
        uint64 minSell;
        uint64 from;
        uint64 until;
        uint64 maxWh;
        uint64 nonce;
        uint256 since;
        bool revoked;
    }

    /// @dev A credit not yet final: withdrawable only from `finalAt` on.
    struct Credit {
        uint32 id;
        int256 amount;
        uint256 finalAt;
        uint64 interval;
    }

    struct Settled {
        uint64 interval;
        uint256[] words; // as settled; a dispute needs them
        uint256 settledAt;
        bool reversed;
    }

    uint32 public ghostCount;
    mapping(uint32 => bool) public ghostActive;
    mapping(uint32 => bool) public ghostFrozen;
    mapping(uint32 => int256) public ghostBalance;
    mapping(uint32 => uint256) public ghostCredit; // credit limit
    mapping(uint32 => Mandate) internal _mandate;
    mapping(uint32 => uint64) public ghostOrderFloor;
    mapping(uint32 => bool) public ghostRotated; // owner key is ownerKey(id) + 0x1000
    mapping(uint32 => uint64) public ghostMeterFrom; // first interval its meter key signs
    mapping(uint32 => uint64) public ghostMandateFloor;
    Terms[] internal _terms;
    mapping(uint64 => uint256) internal _intervalPrices; // 1 + import << 1 + export << 65
    uint64 public ghostDefaultImportCap = 15_000;
    uint64 public ghostDefaultExportCap = 6_000;
    mapping(uint64 => uint256) internal _intervalCap; // 1 + import << 1 + export << 65
    uint256 public ghostReserve;
    uint256 public ghostCreditLimits;
    uint256 public ghostBond;
    uint256 public ghostBacking; // tokens the market should hold
    uint64 public ghostNext;
    Credit[] internal _credits;
    Settled[] internal _settled;
    mapping(uint64 => mapping(uint32 => int256)) public trueReadingWh; // the meters' truth
    mapping(uint64 => uint256) public settledIndexPlusOne;

    // ---- what ran, for HandlerCoverage ----
    uint256 public accepted;
    uint256 public rejected;
    mapping(bytes4 => uint256) public rejections;
    uint256 public orderEntries;
    uint256 public mandateEntries;
    uint256 public excludedEntries;
    uint256 public frauds;
    uint256 public fraudsReversed;
    uint256 public emptySettled;
    uint256 public payAsBidSettled;
    uint256 public withdrawals;

    error Surprise(string action, bytes expected, bytes got);
    error ModelMismatch(string what, int256 expected, int256 actual);

    constructor() {
        _deployMarket(_tariffs(0, false), ghostDefaultImportCap, ghostDefaultExportCap);
        _terms.push(Terms(0, IMPORT, PEAK_IMPORT, EXPORT, 0, 0, false));
        ghostActive[0] = true;
        ghostCount = 1;
        _registerHomes(3);
        for (uint32 id = 1; id <= 3; ++id) {
            ghostActive[id] = true;
            _fund(id, 20_000_000);
            ghostBalance[id] = 20_000_000;
        }
        ghostCount = 4;
        _fund(0, 20_000_000);
        ghostBalance[0] = 20_000_000;
        _bond(3 * uint256(REWARD));
        ghostBond = 3 * uint256(REWARD);
        ghostBacking = 4 * 20_000_000 + ghostBond;
        for (uint32 id = 1; id <= 3; ++id) {
            _submitMandate(_mandateOf(id, 300_000, 60_000, 0, type(uint32).max, 1));
            _mandate[id] = Mandate(300_000, 60_000, EPOCH, TIME_MAX, type(uint64).max, 1, block.timestamp, false);
        }
    }

    // =================================================================== wallets

    /// @notice Someone pays tokens into a wallet (or an unknown id).
    function deposit(uint256 idSeed, uint256 amount) external {
        uint32 id = uint32(idSeed % (ghostCount + 1));
        amount = amount % 5 == 0 ? 0 : amount % 20_000_000;
        token.mint(ADMIN, amount);
        vm.prank(ADMIN);
        token.approve(address(market), amount);
        bytes memory expected;
        if (amount == 0) expected = abi.encodeWithSelector(MarketEvents.ZeroAmount.selector);
        else if (id >= ghostCount) expected = abi.encodeWithSelector(MarketEvents.UnknownParticipant.selector, id);
        vm.prank(ADMIN);
        try wallets.deposit(id, amount) {
            _expectSuccess("deposit", expected);
            ghostBalance[id] += int256(amount);
            ghostBacking += amount;
        } catch (bytes memory got) {
            _expectRevert("deposit", expected, got);
            vm.prank(ADMIN);
            token.approve(address(market), 0);
        }
    }

    /// @notice A participant's owner withdraws, sometimes more than it may.
    function withdraw(uint256 idSeed, uint256 amount) external {
        uint32 id = uint32(idSeed % ghostCount);
        int256 may = withdrawableOf(id);
        uint256 allowed = may > 0 ? uint256(may) : 0;
        amount = amount % 3 == 0 ? allowed + 1 + amount % 1e6 : amount % (allowed + 1);
        bytes memory expected;
        if (amount == 0) expected = abi.encodeWithSelector(MarketEvents.ZeroAmount.selector);
        else if (ghostFrozen[id]) expected = abi.encodeWithSelector(MarketEvents.FrozenParticipant.selector, id);
        else if (int256(amount) > may) {
            expected = abi.encodeWithSelector(MarketEvents.InsufficientBalance.selector, id, may, amount);
        }
        address owner = _owner(id);
        vm.prank(owner);
        try wallets.withdraw(amount) {
            _expectSuccess("withdraw", expected);
            ghostBalance[id] -= int256(amount);
            ghostBacking -= amount;
            ++withdrawals;
        } catch (bytes memory got) {
            _expectRevert("withdraw", expected, got);
        }
    }

    /// @notice The grid operator adds to the reserve, or the admin sets a credit limit
    /// (sometimes beyond the reserve or below the debt), or takes reserve back.
    function credit(uint256 seed, uint256 amount) external {
        uint256 kind = seed % 3;
        if (kind == 0) {
            amount = 1 + amount % 50_000_000;
            _reserve(amount);
            ghostReserve += amount;
            ghostBacking += amount;
            return;
        }
        if (kind == 1) {
            uint32 id = uint32((seed >> 8) % ghostCount);
            uint256 limit = amount % 40_000_000;
            int256 spendable = ghostBalance[id] - lockedOf(id);
            uint256 limits = ghostCreditLimits - ghostCredit[id] + limit;
            bytes memory expected;
            if (spendable < 0 && uint256(-spendable) > limit) {
                expected = abi.encodeWithSelector(MarketEvents.CreditLimitBelowDebt.selector, id, limit, uint256(-spendable));
            } else if (limits > ghostReserve) {
                expected = abi.encodeWithSelector(MarketEvents.ReserveTooSmall.selector, ghostReserve, limits);
            }
            vm.prank(ADMIN);
            try wallets.setCreditLimit(id, limit) {
                _expectSuccess("setCreditLimit", expected);
                ghostCreditLimits = limits;
                ghostCredit[id] = limit;
            } catch (bytes memory got) {
                _expectRevert("setCreditLimit", expected, got);
            }
            return;
        }
        amount = 1 + amount % (ghostReserve + 1);
        bytes memory expected2;
        if (amount > ghostReserve || ghostReserve - amount < ghostCreditLimits) {
            expected2 = abi.encodeWithSelector(
                MarketEvents.ReserveTooSmall.selector, amount > ghostReserve ? 0 : ghostReserve - amount, ghostCreditLimits
            );
        }
        vm.prank(ADMIN);
        try wallets.withdrawReserve(amount) {
            _expectSuccess("withdrawReserve", expected2);
            ghostReserve -= amount;
            ghostBacking -= amount;
        } catch (bytes memory got) {
            _expectRevert("withdrawReserve", expected2, got);
        }
    }

    // =================================================================== participants

    /// @notice The admin registers the next pool home (owner and meter keys), or an owner
    /// already registered.
    function register(uint256 seed) external {
        uint32 id = ghostCount;
        bool again = seed % 4 == 0 || id > POOL;
        address owner = again ? _owner(uint32(1 + seed % (ghostCount - 1))) : vm.addr(ownerKey(id));
        bytes memory expected;
        if (again) expected = abi.encodeWithSelector(MarketEvents.AlreadyRegistered.selector, owner, uint32(1 + seed % (ghostCount - 1)));
        vm.prank(ADMIN);
        try participants.register(owner, vm.addr(meterKey(id)), 0, "home") returns (uint32 got) {
            _expectSuccess("register", expected);
            _equal("new id", id, got);
            ghostActive[id] = true;
            ghostMeterFrom[id] = ghostNext;
            ++ghostCount;
        } catch (bytes memory got) {
            _expectRevert("register", expected, got);
        }
    }

    /// @notice The admin (de)activates or (un)freezes a home.
    function flag(uint256 idSeed, uint8 kind) external {
        uint32 id = uint32(1 + idSeed % (ghostCount - 1));
        bool settleableBefore = ghostActive[id] && !ghostFrozen[id];
        vm.startPrank(ADMIN);
        if (kind & 1 == 0) {
            // Homes mostly come back, so that they keep taking part.
            bool active = !ghostActive[id] || kind & 6 != 0;
            participants.updateParticipant(id, 0, active);
            ghostActive[id] = active;
        } else {
            bool frozen = !ghostFrozen[id] && kind & 6 == 0;
            participants.setFrozen(id, frozen);
            ghostFrozen[id] = frozen;
        }
        vm.stopPrank();
        if (!settleableBefore && ghostActive[id] && !ghostFrozen[id] && _mandate[id].nonce != 0) {
            _mandate[id].since = block.timestamp;
        }
    }

    // =================================================================== terms

    /// @notice The grid operator schedules terms, sometimes without notice; a stranger tries too.
    function scheduleTerms(uint256 seed, uint64 importPrice, uint64 exportPrice, uint64 fee) external {
        importPrice = 100_000 + importPrice % 400_000;
        exportPrice = exportPrice % 80_000;
        fee = fee % 3 == 0 ? 0 : fee % 20_000;
        Terms memory t = Terms(0, importPrice, importPrice + uint64(seed % 100_000), exportPrice, fee, uint32(seed >> 100) & 0xffffff, seed % 3 == 0);
        uint256 earliest = block.timestamp + NOTICE;
        uint64 firstOk = uint64((earliest - EPOCH + LENGTH - 1) / LENGTH);
        t.from = seed % 5 == 0 ? firstOk - 1 - uint64((seed >> 8) % 4) : firstOk + uint64((seed >> 8) % 200);
        MarketStorage.Tariffs memory tariffs =
            MarketStorage.Tariffs(t.importPrice, t.peakImportPrice, t.exportPrice, t.fee, t.peakHours, t.payAsBid);
        bytes memory expected;
        address sender = seed % 7 == 0 ? AUDITOR : GRID_OPERATOR;
        uint256 keep = _terms.length;
        if (sender == AUDITOR) {
            expected = abi.encodeWithSelector(MarketEvents.AccessControlUnauthorizedAccount.selector, AUDITOR, bytes32(0));
        } else if (uint256(EPOCH) + uint256(t.from) * LENGTH < earliest) {
            expected = abi.encodeWithSelector(MarketEvents.NoticeTooShort.selector, t.from, uint256(EPOCH) + uint256(t.from) * LENGTH, earliest);
        } else {
            while (keep > 1 && _terms[keep - 1].from >= t.from) --keep;
        }
        vm.prank(sender);
        try terms.scheduleTerms(t.from, tariffs) returns (uint256 index) {
            _expectSuccess("scheduleTerms", expected);
            _equal("terms index", keep, index);
            while (_terms.length > keep) _terms.pop();
            _terms.push(t);
        } catch (bytes memory got) {
            _expectRevert("scheduleTerms", expected, got);
        }
    }

    /// @notice The grid operator fixes one interval's tariffs or capacity.
    function setInterval(uint256 seed, uint64 a, uint64 b) external {
        uint64 next = ghostNext;
        if (seed % 2 == 0) {
            uint64 at = next + uint64(seed >> 8) % 4;
            if ((seed >> 12) % 2 == 0) {
                // Ahead of the clock (an interval not started yet), as a grid operator would.
                uint64 current = block.timestamp < EPOCH ? 0 : uint64((block.timestamp - EPOCH) / LENGTH);
                if (current + 1 > next) at = current + 1 + uint64(seed >> 8) % 4;
            }
            (a, b) = (a % 80_000, b % 80_000);
            uint256 startsAt = uint256(EPOCH) + uint256(at) * LENGTH;
            bytes memory refused;
            if (at >= FIRST_LIVE && block.timestamp > startsAt) {
                refused = abi.encodeWithSelector(MarketEvents.CapacityAfterStart.selector, at, startsAt, block.timestamp);
            }
            vm.prank(GRID_OPERATOR);
            try terms.setCapacity(at, a, b) {
                _expectSuccess("setCapacity", refused);
                _intervalCap[at] = 1 | (uint256(a) << 1) | (uint256(b) << 65);
            } catch (bytes memory got) {
                _expectRevert("setCapacity", refused, got);
            }
            return;
        }
        uint256 earliest = block.timestamp + NOTICE;
        uint64 k = uint64((earliest - EPOCH) / LENGTH) + uint64(seed >> 8) % 8;
        uint64 importPrice = 100_000 + a % 400_000;
        uint64 exportPrice = b % 80_000; // leaves room for any fee below 20,000
        bytes memory expected;
        if (uint256(EPOCH) + uint256(k) * LENGTH < earliest) {
            expected = abi.encodeWithSelector(MarketEvents.NoticeTooShort.selector, k, uint256(EPOCH) + uint256(k) * LENGTH, earliest);
        }
        vm.prank(GRID_OPERATOR);
        try terms.setIntervalPrices(k, importPrice, exportPrice) {
            _expectSuccess("setIntervalPrices", expected);
            _intervalPrices[k] = 1 | (uint256(importPrice) << 1) | (uint256(exportPrice) << 65);
        } catch (bytes memory got) {
            _expectRevert("setIntervalPrices", expected, got);
        }
    }

    // =================================================================== intent

    /// @notice A home's mandate relayed by anyone: signed by the owner or not, with a
    /// fresh or a stale nonce, covering some intervals, with or without an energy bound.
    function submitMandate(uint256 seed, uint64 maxBuy, uint64 minSell, uint8 variant) external {
        uint32 id = uint32(1 + seed % (ghostCount - 1));
        if (id >= ORDERS_ONLY) return; // these homes only ever sign orders
        Mandate memory cur = _mandate[id];
        // The contract's floor: above the mandate in force and the revocation floor.
        uint64 floor = ghostMandateFloor[id];
        if (cur.nonce != 0 && cur.nonce + 1 > floor) floor = cur.nonce + 1;
        uint64 base = floor == 0 ? 1 : floor; // nonce 0 would read as "no mandate" in the model
        uint64 from = ghostNext > 2 && seed % 3 == 0 ? ghostNext - 2 : ghostNext;
        MandatesModule.Mandate memory m = MandatesModule.Mandate({
            participant: id,
            maxBuyPrice: seed % 4 == 0 ? maxBuy % 600_000 : 600_000,
            minSellPrice: seed % 4 == 1 ? minSell % 150_000 : 0,
            minSocPpm: 0,
            maxSocPpm: 1_000_000,
            validFrom: _startOf(from),
            validUntil: seed % 5 == 0 ? _startOf(from + 1 + uint64(seed >> 16) % 8) - 1 : type(uint64).max,
            maxEnergyWh: seed % 3 == 0 ? uint64(seed >> 24) % 3_000 : type(uint64).max,
            nonce: base + uint64(seed >> 32) % 3
        });
        uint256 key = _key(id);
        bytes memory expected;
        variant %= 5;
        if (variant == 0) {
            key = 0xBAD000 + seed % 1000;
            expected = abi.encodeWithSelector(MarketEvents.BadMandateSignature.selector, id, vm.addr(key));
        } else if (variant == 1 && floor > 0) {
            m.nonce = floor - 1 - uint64(seed >> 40) % floor;
            expected = abi.encodeWithSelector(MarketEvents.StaleMandateNonce.selector, id, floor, m.nonce);
        }
        bytes memory signature = Signing.signMandate(key, address(market), m);
        try mandates.submitMandate(m, signature) {
            _expectSuccess("submitMandate", expected);
            uint64 until = m.validUntil > TIME_MAX ? TIME_MAX : m.validUntil;
            _mandate[id] = Mandate(
                m.maxBuyPrice, m.minSellPrice, m.validFrom, until, m.maxEnergyWh, m.nonce, block.timestamp, false
            );
        } catch (bytes memory got) {
            _expectRevert("submitMandate", expected, got);
        }
    }

    /// @notice A home revokes mandates or cancels orders up to a nonce (sometimes below its floor).
    function cancel(uint256 seed, bool orders) external {
        uint32 id = uint32(1 + seed % (ghostCount - 1));
        uint64 floor = orders ? ghostOrderFloor[id] : ghostMandateFloor[id];
        // Revocations mostly reach the mandate in force.
        uint64 current = orders ? 0 : _mandate[id].nonce;
        uint64 upTo = seed % 4 == 0 && floor > 0 ? floor - 1 : (current > floor ? current : floor) + uint64(seed >> 8) % 2;
        bytes memory expected;
        if (upTo < floor) expected = abi.encodeWithSelector(MarketEvents.NonceNotAboveFloor.selector, id, floor, upTo);
        vm.prank(_owner(id));
        if (orders) {
            try mandates.cancelOrders(id, upTo) {
                _expectSuccess("cancelOrders", expected);
                ghostOrderFloor[id] = upTo + 1;
            } catch (bytes memory got) {
                _expectRevert("cancelOrders", expected, got);
            }
            return;
        }
        try mandates.revokeMandates(id, upTo) {
            _expectSuccess("revokeMandates", expected);
            ghostMandateFloor[id] = upTo + 1;
            if (_mandate[id].nonce != 0 && _mandate[id].nonce <= upTo) _mandate[id].revoked = true;
        } catch (bytes memory got) {
            _expectRevert("revokeMandates", expected, got);
        }
    }

    /// @notice A home hands its participant to a new key (and back: the pool's key).
    function rotate(uint256 seed) external {
        uint32 id = uint32(1 + seed % (ghostCount - 1));
        address current = _owner(id);
        address next = current == vm.addr(ownerKey(id)) ? vm.addr(ownerKey(id) + 0x1000) : vm.addr(ownerKey(id));
        bytes memory expected;
        if (ghostFrozen[id]) expected = abi.encodeWithSelector(MarketEvents.FrozenParticipant.selector, id);
        vm.prank(current);
        try participants.rotateOwner(id, next) {
            _expectSuccess("rotateOwner", expected);
            ghostRotated[id] = !ghostRotated[id];
        } catch (bytes memory got) {
            _expectRevert("rotateOwner", expected, got);
        }
    }

    /// @notice Time passes.
    function warp(uint256 secondsAhead) external {
        vm.warp(block.timestamp + secondsAhead % (2 * uint256(LENGTH) + WINDOW / 2));
    }

    // =================================================================== settlement

    /// @notice The honest oracle settles the next interval (or one a dispute reversed):
    /// every home with a mandate for it or an order, at its meter's reading, grid and
    /// one P2P pair at the terms' prices; homes whose mandate or credit rules out the
    /// grid's price are declared excluded. The market must accept it unless the model
    /// says the interval has not ended, the bond is short or a capacity is exceeded.
    function settle(uint256 seed) external {
        uint64 k = _nextToSettle();
        if (seed % 3 != 0) _warpPast(k); // the oracle mostly waits for the interval's end
        (SettlementBuilder.Draft memory d, bytes memory expected) = _honest(k, seed);
        _submitAs(ORACLE, "settle", d, expected);
    }

    /// @notice A rogue oracle tampers with an otherwise valid settlement: a price off the
    /// terms, an inflated energy, an omitted home, a cancelled or forged order, a false
    /// exclusion, a home without a mandate, or a stranger sending it. What the contract
    /// accepts (energy within every limit) the auditor disputes at once with the
    /// meter-signed reading, and it must be reversed.
    function settleFraud(uint256 seed, uint8 variant) external {
        uint64 k = _nextToSettle();
        _warpPast(k);
        (SettlementBuilder.Draft memory d, bytes memory expected) = _honest(k, seed);
        if (expected.length != 0 || d.ids.length == 0) return;
        address sender = ORACLE;
        uint32 victim;
        (expected, victim, sender) = _tamper(d, seed, variant % 8);
        if (victim == type(uint32).max) return; // nothing to tamper with here
        ++frauds;
        bool acceptedBefore = _submitAs(sender, "settleFraud", d, expected);
        if (!acceptedBefore) return;
        // Accepted: its energy contradicts (or omits) a meter reading. The auditor disputes.
        _disputeFraud(k, victim);
    }

    /// @notice Someone disputes an honest interval (or a final one): it must fail.
    function disputeHonest(uint256 seed, uint32 idSeed, bool forge) external {
        if (_settled.length == 0) return;
        Settled memory s = _settled[seed % _settled.length];
        if (s.reversed) return;
        uint32 id = uint32(1 + idSeed % (ghostCount - 1));
        int256 net = trueReadingWh[s.interval][id];
        DisputeModule.Reading memory r = _reading(id, s.interval, net);
        bytes memory signature = Signing.signReading(forge ? _key(id) : meterKey(id), address(market), r);
        uint256 finalAt = _finalAt(s.settledAt);
        (bool found, uint256 i) = _find(s.words, id);
        bytes memory expected;
        if (block.timestamp >= finalAt) {
            expected = abi.encodeWithSelector(MarketEvents.IntervalFinal.selector, s.interval, finalAt);
        } else if (ghostMeterFrom[id] > s.interval) {
            expected = abi.encodeWithSelector(MarketEvents.NoMeterKey.selector, id, s.interval);
        } else if (forge) {
            expected = abi.encodeWithSelector(MarketEvents.BadMeterSignature.selector, id, vm.addr(_key(id)), vm.addr(meterKey(id)));
        } else if (found) {
            expected = abi.encodeWithSelector(MarketEvents.NoContradiction.selector, id, _netOf(s.words[i]), net);
        } else {
            expected = abi.encodeWithSelector(MarketEvents.NotEligible.selector, id, s.interval);
        }
        vm.prank(AUDITOR);
        try disputes.dispute(s.interval, _oneChunkHash(s.words), 0, _oneChunk(s.words), r, signature) {
            _expectSuccess("disputeHonest", expected);
        } catch (bytes memory got) {
            _expectRevert("disputeHonest", expected, got);
        }
    }

    /// @notice The oracle tops its bond up, or tries to take some back.
    function bond(uint256 seed, uint256 amount) external {
        if (seed % 4 == 0) {
            amount = 1 + amount % uint256(REWARD);
            _bond(amount);
            ghostBond += amount;
            ghostBacking += amount;
            return;
        }
        amount = 1 + amount % (ghostBond + 1);
        uint256 withdrawableAt = _lastSettledBucketEnd();
        bytes memory expected;
        if (block.timestamp < withdrawableAt) expected = abi.encodeWithSelector(MarketEvents.BondLocked.selector, withdrawableAt);
        else if (amount > ghostBond) expected = abi.encodeWithSelector(MarketEvents.InsufficientBond.selector, ghostBond, amount);
        vm.prank(ORACLE);
        try disputes.withdrawBond(amount) {
            _expectSuccess("withdrawBond", expected);
            ghostBond -= amount;
            ghostBacking -= amount;
        } catch (bytes memory got) {
            _expectRevert("withdrawBond", expected, got);
        }
    }

    // =================================================================== the honest oracle

    uint64[] internal _toResettle;
    uint256 internal _lastSettledAt;

    function _nextToSettle() internal view returns (uint64) {
        return _toResettle.length > 0 ? _toResettle[_toResettle.length - 1] : ghostNext;
    }

    /// @dev Draws every home's reading of `k` and builds the honest settlement; returns
    /// what the market must answer ("" for acceptance).
    function _honest(uint64 k, uint256 seed) internal returns (SettlementBuilder.Draft memory d, bytes memory expected) {
        uint32 n = ghostCount - 1;
        uint32[] memory ids = new uint32[](n);
        int256[] memory g = new int256[](n);
        bool[] memory byOrder = new bool[](n);
        bool[] memory excluded = new bool[](n);
        uint256 count;
        (uint256 index, uint256 imp, uint256 exp, uint256 fee, bool pab) = termsOf(k);
        for (uint32 id = 1; id <= n; ++id) {
            uint256 r = uint256(keccak256(abi.encode(seed, id)));
            int256 net = r % 5 == 0 ? int256(0) : int256(r % uint256(2 * MAX_READING + 1)) - MAX_READING;
            trueReadingWh[k][id] = net;
            if (!ghostActive[id] || ghostFrozen[id] || net == 0) continue;
            bool hasMandate = _covers(id, k);
            bool order = (r >> 64) % 4 == 0 || (!hasMandate && (r >> 64) % 3 == 0);
            if (!hasMandate && !order) continue;
            ids[count] = id;
            g[count] = net;
            byOrder[count] = order;
            // Settling this home with the grid must be allowed: else it is left out, declared.
            excluded[count] = !_gridAllowed(id, k, net, imp, exp, order, hasMandate);
            if (excluded[count] && !hasMandate) continue; // no mandate: simply not settled
            ++count;
        }
        d.h = MarketStorage.Header(k, keccak256(abi.encode(seed)), uint64(exp + (imp - fee - exp) / 2), uint32(index));
        (d.importPrice, d.exportPrice, d.fee, d.payAsBid) = (imp, exp, fee, pab);
        d.ids = new uint32[](count);
        d.gridWh = new int256[](count);
        d.p2pWh = new int256[](count);
        d.byOrder = new bool[](count);
        d.excluded = new bool[](count);
        d.limits = new uint64[](count);
        uint256 orders;
        for (uint256 i = 0; i < count; ++i) {
            (d.ids[i], d.gridWh[i], d.byOrder[i], d.excluded[i]) = (ids[i], g[i], byOrder[i] && !excluded[i], excluded[i]);
            if (d.byOrder[i]) ++orders;
        }
        _pairP2P(d);
        d.orders = new EntryChecks.OrderAuth[](orders);
        d.orderIds = new uint32[](orders);
        uint256 j;
        for (uint256 i = 0; i < count; ++i) {
            if (!d.byOrder[i]) continue;
            d.limits[i] = _limitFor(d, i, seed);
            d.orders[j] = _signOrder(d, i, d.limits[i], ghostOrderFloor[d.ids[i]] + uint64(seed % 3), 100);
            d.orderIds[j++] = d.ids[i];
        }
        d.price(seed);
        expected = _expectedHeader(d);
        if (expected.length == 0) expected = _expectedTotals(d);
    }

    /// @dev What settling `net` with the grid alone needs: the order (always signed to
    /// admit the tariff) or the mandate's price and energy limits, and for an import the
    /// home's credit.
    function _gridAllowed(uint32 id, uint64, int256 net, uint256 imp, uint256 exp, bool order, bool hasMandate)
        internal
        view
        returns (bool)
    {
        if (!order && hasMandate) {
            Mandate memory m = _mandate[id];
            uint256 energy = uint256(net >= 0 ? net : -net);
            if (energy > m.maxWh) return false;
            if (net > 0 && m.maxBuy < imp) return false;
            if (net < 0 && m.minSell > exp) return false;
        }
        if (net > 0) {
            int256 cost = int256((uint256(net) * imp + 999) / 1000);
            if (withdrawableOf(id) + int256(ghostCredit[id]) < cost) return false;
        }
        return true;
    }

    /// @dev The first buyer and the first seller (not excluded) trade half of what both
    /// could P2P.
    function _pairP2P(SettlementBuilder.Draft memory d) internal pure {
        uint256 b = type(uint256).max;
        uint256 s = type(uint256).max;
        for (uint256 i = 0; i < d.ids.length; ++i) {
            if (d.excluded[i]) continue;
            if (d.gridWh[i] > 0 && b == type(uint256).max) b = i;
            if (d.gridWh[i] < 0 && s == type(uint256).max) s = i;
        }
        if (b == type(uint256).max || s == type(uint256).max) return;
        int256 v = (d.gridWh[b] < -d.gridWh[s] ? d.gridWh[b] : -d.gridWh[s]) / 2;
        (d.p2pWh[b], d.gridWh[b]) = (v, d.gridWh[b] - v);
        (d.p2pWh[s], d.gridWh[s]) = (-v, d.gridWh[s] + v);
    }

    /// @dev An order limit that admits the grid's tariff of the home's side (and under
    /// pay-as-bid sometimes a price inside the spread).
    function _limitFor(SettlementBuilder.Draft memory d, uint256 i, uint256 seed) internal pure returns (uint64) {
        int256 net = d.gridWh[i] + d.p2pWh[i];
        if (net >= 0) return uint64(d.importPrice + seed % 50_000);
        return uint64(d.exportPrice - (d.exportPrice > 0 ? seed % (d.exportPrice + 1) : 0));
    }

    function _signOrder(SettlementBuilder.Draft memory d, uint256 i, uint64 limit, uint64 nonce, uint64 margin)
        internal
        view
        returns (EntryChecks.OrderAuth memory)
    {
        int256 net = d.gridWh[i] + d.p2pWh[i];
        Signing.Order memory o = Signing.Order(
            net >= 0 ? Signing.BUY : Signing.SELL,
            uint64(uint256(net >= 0 ? net : -net)) + margin,
            limit,
            type(uint64).max,
            nonce
        );
        return Signing.signOrder(_key(d.ids[i]), address(market), d.ids[i], d.h.interval, o);
    }

    function _expectedHeader(SettlementBuilder.Draft memory d) internal view returns (bytes memory) {
        if (ghostBond < REWARD) return abi.encodeWithSelector(MarketEvents.BondTooLow.selector, ghostBond, uint256(REWARD));
        uint256 endsAt = _endOf(d.h.interval);
        if (block.timestamp < endsAt) {
            return abi.encodeWithSelector(MarketEvents.IntervalNotEnded.selector, d.h.interval, endsAt, block.timestamp);
        }
        return "";
    }

    /// @dev Totals the contract checks after the entries: capacity, then the grid's credit.
    function _expectedTotals(SettlementBuilder.Draft memory d) internal view returns (bytes memory) {
        (uint256 importWh, uint256 exportWh) = d.gridFlows();
        (uint64 importCap, uint64 exportCap) = capacityOf(d.h.interval);
        if (importWh > importCap) {
            return abi.encodeWithSelector(MarketEvents.ImportCapacityExceeded.selector, d.h.interval, importWh, uint256(importCap));
        }
        if (exportWh > exportCap) {
            return abi.encodeWithSelector(MarketEvents.ExportCapacityExceeded.selector, d.h.interval, exportWh, uint256(exportCap));
        }
        if (d.gridAmount < 0) {
            int256 available = withdrawableOf(0) + int256(ghostCredit[0]);
            if (available < -d.gridAmount) {
                return abi.encodeWithSelector(MarketEvents.CreditLimitExceeded.selector, uint32(0), available, -d.gridAmount);
            }
        }
        return "";
    }

    /// @dev Sends `d` as `sender`; on acceptance applies it to the model.
    function _submitAs(address sender, string memory action, SettlementBuilder.Draft memory d, bytes memory expected)
        internal
        returns (bool)
    {
        uint256[] memory words = d.entries();
        vm.prank(sender);
        try settlement.settle(d.h, words, d.orders) {
            _expectSuccess(action, expected);
            _apply(d, words);
            return true;
        } catch (bytes memory got) {
            _expectRevert(action, expected, got);
            ++rejected;
            ++rejections[bytes4(got)];
            return false;
        }
    }

    function _apply(SettlementBuilder.Draft memory d, uint256[] memory words) internal {
        _prune();
        uint64 k = d.h.interval;
        uint256 finalAt = _finalAt(block.timestamp);
        for (uint256 i = 0; i < d.ids.length; ++i) {
            if (d.excluded[i]) {
                ++excludedEntries;
                continue;
            }
            d.byOrder[i] ? ++orderEntries : ++mandateEntries;
            _move(d.ids[i], d.amount[i], finalAt, k);
        }
        _move(0, d.gridAmount, finalAt, k);
        if (_toResettle.length > 0 && _toResettle[_toResettle.length - 1] == k) _toResettle.pop();
        else ++ghostNext;
        _settled.push(Settled(k, words, block.timestamp, false));
        settledIndexPlusOne[k] = _settled.length;
        _lastSettledAt = block.timestamp;
        ++accepted;
        if (d.ids.length == 0) ++emptySettled;
        if (d.payAsBid && d.orders.length > 0) ++payAsBidSettled;
    }

    function _move(uint32 id, int256 amount, uint256 finalAt, uint64 k) internal {
        ghostBalance[id] += amount;
        if (amount > 0) _credits.push(Credit(id, amount, finalAt, k));
    }

    /// @dev Forgets credits that are final: the model needs only those that are not.
    function _prune() internal {
        uint256 c = 0;
        while (c < _credits.length) {
            if (_credits[c].finalAt <= block.timestamp) {
                _credits[c] = _credits[_credits.length - 1];
                _credits.pop();
            } else {
                ++c;
            }
        }
    }

    // =================================================================== the rogue oracle

    /// @dev Tampers with honest draft `d`; returns the expected answer, the home whose
    /// reading the fraud contradicts (max: nothing to tamper with), and the sender.
    function _tamper(SettlementBuilder.Draft memory d, uint256 seed, uint8 variant)
        internal
        view
        returns (bytes memory expected, uint32 victim, address sender)
    {
        sender = ORACLE;
        victim = type(uint32).max;
        uint256 n = d.ids.length;
        uint256 start = (seed >> 16) % n;
        for (uint256 t = 0; t < n; ++t) {
            uint256 i = (start + t) % n;
            if (d.excluded[i]) continue;
            uint32 id = d.ids[i];
            if (variant == 0) {
                // A wallet change off the terms' price.
                d.amount[i] += 1000;
                d.gridAmount -= 1000;
                return (abi.encodeWithSelector(MarketEvents.PaymentMismatch.selector, id, d.amount[i], d.exactMilli[i]), id, sender);
            }
            if (variant == 1 && d.gridWh[i] + d.p2pWh[i] >= 0) {
                // Energy the meter did not read, within every limit or not.
                int256 extra = (seed >> 40) % 2 == 0 ? int256(1_000_000) : 1 + int256((seed >> 40) % 300);
                d.gridWh[i] += extra;
                d.price(seed);
                return (_expectedInflated(d, i), id, sender);
            }
            if (variant == 2 && d.p2pWh[i] == 0 && _covers(id, d.h.interval) && _mandate[id].since < block.timestamp) {
                // A home with a mandate and a nonzero reading, left out.
                _drop(d, i);
                d.price(seed);
                return (_expectedTotals(d), id, sender);
            }
            if (variant == 3 && d.byOrder[i] && ghostOrderFloor[id] > 0) {
                uint64 nonce = ghostOrderFloor[id] - 1;
                d.orders[_orderIndex(d, id)] = _signOrder(d, i, d.limits[i], nonce, 100);
                return (abi.encodeWithSelector(MarketEvents.OrderCancelled.selector, id, nonce, ghostOrderFloor[id]), id, sender);
            }
            if (variant == 4 && !d.byOrder[i] && d.p2pWh[i] == 0) {
                // A settleable mandate home declared excluded.
                d.excluded[i] = true;
                d.price(seed);
                return (abi.encodeWithSelector(MarketEvents.NotExcludable.selector, id, d.h.interval), id, sender);
            }
            if (variant == 5 && d.byOrder[i]) {
                uint256 key = 0xBAD000 + seed % 1000;
                EntryChecks.OrderAuth memory forged = _signOrder(d, i, d.limits[i], ghostOrderFloor[id], 100);
                bytes32 digest = Signing.orderDigest(address(market), id, d.h.interval, _unpack(forged.packed));
                (forged.r, forged.vs) = vm.signCompact(key, digest);
                d.orders[_orderIndex(d, id)] = forged;
                return (abi.encodeWithSelector(MarketEvents.BadOrderSignature.selector, id, vm.addr(key)), id, sender);
            }
        }
        if (variant == 6) {
            sender = address(uint160(0xBAD) + uint160(seed % 7));
            return (abi.encodeWithSelector(MarketEvents.AccessControlUnauthorizedAccount.selector, sender, keccak256("ORACLE_ROLE")), 0, sender);
        }
        if (variant == 7) return _addUnauthorised(d, seed);
        return ("", type(uint32).max, sender);
    }

    /// @dev What the contract says of entry `i` after its energy was inflated: its order's
    /// or mandate's energy bound, its credit, or (accepted) capacity and the grid's credit.
    function _expectedInflated(SettlementBuilder.Draft memory d, uint256 i) internal view returns (bytes memory) {
        uint32 id = d.ids[i];
        uint256 net = uint256(d.gridWh[i] + d.p2pWh[i]);
        if (d.byOrder[i]) {
            // The order was signed for the home's reading plus 100 Wh (see _signOrder).
            uint64 signed = uint64(uint256(trueReadingWh[d.h.interval][id])) + 100;
            if (net > signed) return abi.encodeWithSelector(MarketEvents.OrderQuantityExceeded.selector, id, net, signed);
        } else if (net > _mandate[id].maxWh) {
            return abi.encodeWithSelector(MarketEvents.MandateEnergyExceeded.selector, id, net, uint256(_mandate[id].maxWh));
        }
        if (d.amount[i] < 0) {
            int256 available = withdrawableOf(id) + int256(ghostCredit[id]);
            if (available < -d.amount[i]) {
                return abi.encodeWithSelector(MarketEvents.CreditLimitExceeded.selector, id, available, -d.amount[i]);
            }
        }
        return _expectedTotals(d);
    }

    /// @dev A home without a mandate for the interval (active, not frozen, not among the
    /// entries) settled by "mandate" at its reading.
    function _addUnauthorised(SettlementBuilder.Draft memory d, uint256 seed)
        internal
        view
        returns (bytes memory, uint32, address)
    {
        uint64 k = d.h.interval;
        // Mostly homes that never had a mandate, or whose mandate was revoked, first:
        // they are few, and each makes the contract give another reason.
        uint256 prefer = (seed >> 200) % 3;
        for (uint32 t = 0; t < 2 * (ghostCount - 1); ++t) {
            uint32 id = 1 + uint32((seed % (ghostCount - 1) + t) % (ghostCount - 1));
            if (t < ghostCount - 1 && prefer == 0 && _mandate[id].nonce != 0) continue;
            if (t < ghostCount - 1 && prefer == 1 && !_mandate[id].revoked) continue;
            int256 net = trueReadingWh[k][id];
            if (!ghostActive[id] || ghostFrozen[id] || _covers(id, k) || net == 0 || _has(d, id)) continue;
            _insert(d, id, net);
            d.price(seed);
            Mandate memory m = _mandate[id];
            bytes memory expected;
            if (m.nonce == 0) expected = abi.encodeWithSelector(MarketEvents.NoMandate.selector, id);
            else if (m.revoked) expected = abi.encodeWithSelector(MarketEvents.RevokedMandate.selector, id, m.nonce);
            else expected = abi.encodeWithSelector(MarketEvents.MandateNotInForce.selector, id, k, m.from, m.until);
            return (expected, id, ORACLE);
        }
        return ("", type(uint32).max, ORACLE);
    }

    /// @dev The auditor disputes accepted fraudulent interval `k` with `victim`'s reading.
    function _disputeFraud(uint64 k, uint32 victim) internal {
        Settled storage s = _settled[settledIndexPlusOne[k] - 1];
        DisputeModule.Reading memory r = _reading(victim, k, trueReadingWh[k][victim]);
        bytes memory signature = Signing.signReading(meterKey(victim), address(market), r);
        uint256 balanceBefore = token.balanceOf(AUDITOR);
        uint256 reward = ghostBond < REWARD ? ghostBond : REWARD;
        vm.prank(AUDITOR);
        disputes.dispute(k, _oneChunkHash(s.words), 0, _oneChunk(s.words), r, signature);
        _equal("disputer's reward", balanceBefore + reward, token.balanceOf(AUDITOR));
        ghostBond -= reward;
        ghostBacking -= reward;
        s.reversed = true;
        // Take back every wallet change of the interval and its credits.
        for (uint256 i = 0; i < s.words.length; ++i) {
            if (s.words[i] & SettlementBuilder.EXCLUDED != 0) continue;
            (uint32 id, int256 amount) = (uint32(s.words[i] >> 224) & 0x3fffffff, int256(int128(uint128(s.words[i]))));
            ghostBalance[id] -= amount;
            ghostBalance[0] += amount;
        }
        for (uint256 c = 0; c < _credits.length; ++c) {
            if (_credits[c].interval == k) _credits[c].amount = 0;
        }
        _toResettle.push(k);
        ++fraudsReversed;
    }

    // =================================================================== model views

    /// @dev Balance less credits not yet final (or reversed).
    function withdrawableOf(uint32 id) public view returns (int256) {
        return ghostBalance[id] - lockedOf(id);
    }

    function lockedOf(uint32 id) public view returns (int256 locked) {
        for (uint256 c = 0; c < _credits.length; ++c) {
            if (_credits[c].id == id && _credits[c].finalAt > block.timestamp) locked += _credits[c].amount;
        }
    }

    /// @dev The terms of interval `k` as scheduled: index, import (time of use or the
    /// interval's own), export, fee, pay-as-bid.
    function termsOf(uint64 k) public view returns (uint256 index, uint256 imp, uint256 exp, uint256 fee, bool pab) {
        for (uint256 i = 0; i < _terms.length; ++i) {
            if (_terms[i].from <= k) index = i;
        }
        Terms memory t = _terms[index];
        uint256 hour = ((uint256(EPOCH) + uint256(k) * LENGTH) / 3600) % 24;
        imp = (t.peakHours >> hour) & 1 == 1 ? t.peakImportPrice : t.importPrice;
        exp = t.exportPrice;
        uint256 own = _intervalPrices[k];
        if (own & 1 == 1) (imp, exp) = (uint64(own >> 1), uint64(own >> 65));
        return (index, imp, exp, t.fee, t.payAsBid);
    }

    function capacityOf(uint64 k) public view returns (uint64, uint64) {
        uint256 own = _intervalCap[k];
        if (own & 1 == 1) return (uint64(own >> 1), uint64(own >> 65));
        return (ghostDefaultImportCap, ghostDefaultExportCap);
    }

    function marketAddress() external view returns (address) {
        return address(market);
    }

    function tokenContract() external view returns (GridToken) {
        return token;
    }

    function oracleAddress() external pure returns (address) {
        return ORACLE;
    }

    function gridOperatorAddress() external pure returns (address) {
        return GRID_OPERATOR;
    }

    function settledCount() external view returns (uint256) {
        return _settled.length;
    }

    function settledAt(uint256 i) external view returns (uint64 interval, uint256[] memory words, bool reversed) {
        Settled storage s = _settled[i];
        return (s.interval, s.words, s.reversed);
    }

    // =================================================================== helpers

    function _covers(uint32 id, uint64 k) internal view returns (bool) {
        Mandate memory m = _mandate[id];
        return m.nonce != 0 && !m.revoked && m.from <= _startOf(k) && _startOf(k + 1) <= uint256(m.until) + 1;
    }

    function _finalAt(uint256 t) internal pure returns (uint256) {
        return (t / WINDOW + 2) * WINDOW;
    }

    function _lastSettledBucketEnd() internal view returns (uint256) {
        return _lastSettledAt == 0 ? 2 * uint256(WINDOW) : _finalAt(_lastSettledAt);
    }

    function _reading(uint32 id, uint64 k, int256 net) internal pure returns (DisputeModule.Reading memory) {
        return DisputeModule.Reading(id, k, net > 0 ? uint64(uint256(net)) : 0, net < 0 ? uint64(uint256(-net)) : 0);
    }

    function _netOf(uint256 word) internal pure returns (int256) {
        return int256(int48(uint48(word >> 176))) + int256(int48(uint48(word >> 128)));
    }

    function _find(uint256[] memory words, uint32 id) internal pure returns (bool, uint256) {
        for (uint256 i = 0; i < words.length; ++i) {
            if (uint32(words[i] >> 224) & 0x3fffffff == id) return (true, i);
        }
        return (false, 0);
    }

    function _has(SettlementBuilder.Draft memory d, uint32 id) internal pure returns (bool) {
        for (uint256 i = 0; i < d.ids.length; ++i) {
            if (d.ids[i] == id) return true;
        }
        return false;
    }

    function _drop(SettlementBuilder.Draft memory d, uint256 i) internal pure {
        uint256 n = d.ids.length - 1;
        uint32[] memory ids = new uint32[](n);
        int256[] memory g = new int256[](n);
        int256[] memory p = new int256[](n);
        bool[] memory bo = new bool[](n);
        bool[] memory ex = new bool[](n);
        uint64[] memory lim = new uint64[](n);
        for (uint256 j = 0; j < n; ++j) {
            uint256 src = j < i ? j : j + 1;
            (ids[j], g[j], p[j], bo[j], ex[j], lim[j]) =
                (d.ids[src], d.gridWh[src], d.p2pWh[src], d.byOrder[src], d.excluded[src], d.limits[src]);
        }
        if (d.byOrder[i]) _removeOrder(d, _orderIndex(d, d.ids[i]));
        (d.ids, d.gridWh, d.p2pWh, d.byOrder, d.excluded, d.limits) = (ids, g, p, bo, ex, lim);
    }

    function _insert(SettlementBuilder.Draft memory d, uint32 id, int256 net) internal pure {
        uint256 n = d.ids.length + 1;
        uint32[] memory ids = new uint32[](n);
        int256[] memory g = new int256[](n);
        int256[] memory p = new int256[](n);
        bool[] memory bo = new bool[](n);
        bool[] memory ex = new bool[](n);
        uint64[] memory lim = new uint64[](n);
        uint256 at = 0;
        while (at < d.ids.length && d.ids[at] < id) ++at;
        for (uint256 j = 0; j < n; ++j) {
            if (j == at) {
                (ids[j], g[j]) = (id, net);
                continue;
            }
            uint256 src = j < at ? j : j - 1;
            (ids[j], g[j], p[j], bo[j], ex[j], lim[j]) =
                (d.ids[src], d.gridWh[src], d.p2pWh[src], d.byOrder[src], d.excluded[src], d.limits[src]);
        }
        (d.ids, d.gridWh, d.p2pWh, d.byOrder, d.excluded, d.limits) = (ids, g, p, bo, ex, lim);
    }

    function _orderIndex(SettlementBuilder.Draft memory d, uint32 id) internal pure returns (uint256) {
        for (uint256 j = 0; j < d.orderIds.length; ++j) {
            if (d.orderIds[j] == id) return j;
        }
        revert ModelMismatch("order for participant", int256(uint256(id)), -1);
    }

    function _removeOrder(SettlementBuilder.Draft memory d, uint256 j) internal pure {
        EntryChecks.OrderAuth[] memory orders = new EntryChecks.OrderAuth[](d.orders.length - 1);
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

    function _key(uint32 id) internal view returns (uint256) {
        return ghostRotated[id] ? ownerKey(id) + 0x1000 : ownerKey(id);
    }

    function _owner(uint32 id) internal view returns (address) {
        return id == 0 ? GRID_OPERATOR : vm.addr(_key(id));
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
