// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EnergyMarket} from "../src/EnergyMarket.sol";
import {GridToken} from "../src/GridToken.sol";
import {MarketStorage} from "../src/MarketStorage.sol";
import {DisputeModule} from "../src/modules/DisputeModule.sol";
import {MandatesModule} from "../src/modules/MandatesModule.sol";
import {ParticipantsModule} from "../src/modules/ParticipantsModule.sol";
import {RolesModule} from "../src/modules/RolesModule.sol";
import {SharedBatteryModule} from "../src/modules/SharedBatteryModule.sol";
import {SettlementModule} from "../src/modules/SettlementModule.sol";
import {TermsModule} from "../src/modules/TermsModule.sol";
import {WalletsModule} from "../src/modules/WalletsModule.sol";
import {ZonalSettlementModule} from "../src/modules/ZonalSettlementModule.sol";
import {SettlementBuilder} from "./SettlementBuilder.sol";
import {Signing} from "./Signing.sol";
import {vm} from "./Vm.sol";

/// @dev Deploys a market as node/deploy.py does (modules first, then the router that
/// names them) and plays its actors: the admin, the oracle, the grid operator, homes
/// with an owner key and a meter key each.
abstract contract MarketFixture {
    address internal constant ADMIN = address(0xAD);
    address internal constant ORACLE = address(0x0AC1E);
    address internal constant GRID_OPERATOR = address(0x6D);
    uint40 internal constant EPOCH = 1_700_000_000; // a Tuesday 22:13 UTC; no peak hours by default
    uint32 internal constant LENGTH = 900;
    uint32 internal constant WINDOW = 3600;
    uint32 internal constant NOTICE = 86_400;
    /// @dev Deployed a day after EPOCH, then the clock goes back to EPOCH: intervals
    /// 0..95 are history (their capacities may be set whenever), from 96 on the
    /// intervals are live (a capacity is set before the interval starts).
    uint64 internal constant FIRST_LIVE = 96;
    uint64 internal constant IMPORT = 300_000; // 0.30 per kWh
    uint64 internal constant PEAK_IMPORT = 400_000;
    uint64 internal constant EXPORT = 60_000; // 0.06 per kWh
    uint128 internal constant REWARD = 1_000_000;
    uint256 internal constant OWNER_KEY_BASE = 0xA11CE0;
    uint256 internal constant METER_KEY_BASE = 0x3E7E50;

    GridToken internal token;
    EnergyMarket internal market;
    SettlementModule internal settlement;
    DisputeModule internal disputes;
    ParticipantsModule internal participants;
    WalletsModule internal wallets;
    MandatesModule internal mandates;
    TermsModule internal terms;
    RolesModule internal roles;
    SharedBatteryModule internal sharedBatteries;
    /// @dev The first terms' storage fee and operator (set before _deployMarket).
    uint32 internal storageFee;
    uint32 internal storageOperator;
    ZonalSettlementModule internal zonal;

    function _tariffs(uint64 fee, bool payAsBid) internal pure returns (MarketStorage.Tariffs memory) {
        return MarketStorage.Tariffs(IMPORT, PEAK_IMPORT, EXPORT, fee, 0, payAsBid);
    }

    function _deployMarket(MarketStorage.Tariffs memory tariffs, uint64 importCapacity, uint64 exportCapacity)
        internal
    {
        token = new GridToken(address(this));
        address[] memory modules = new address[](9);
        modules[0] = address(new SettlementModule());
        modules[1] = address(new DisputeModule());
        modules[2] = address(new ParticipantsModule());
        modules[3] = address(new WalletsModule());
        modules[4] = address(new MandatesModule());
        modules[5] = address(new TermsModule());
        modules[6] = address(new RolesModule());
        modules[7] = address(new SharedBatteryModule());
        modules[8] = address(new ZonalSettlementModule());
        EnergyMarket.Setup memory setup = EnergyMarket.Setup({
            admin: ADMIN,
            oracle: ORACLE,
            gridOperator: GRID_OPERATOR,
            token: token,
            importCapacityWh: importCapacity,
            exportCapacityWh: exportCapacity,
            firstInterval: 0,
            epoch: EPOCH,
            intervalSeconds: LENGTH,
            disputeWindow: WINDOW,
            noticeSeconds: NOTICE,
            disputeReward: REWARD,
            terms: tariffs,
            storageFee: storageFee,
            storageOperator: storageOperator
        });
        vm.warp(uint256(EPOCH) + FIRST_LIVE * LENGTH);
        market = new EnergyMarket(setup, modules);
        address m = address(market);
        settlement = SettlementModule(m);
        disputes = DisputeModule(m);
        participants = ParticipantsModule(m);
        wallets = WalletsModule(m);
        mandates = MandatesModule(m);
        terms = TermsModule(m);
        roles = RolesModule(m);
        sharedBatteries = SharedBatteryModule(m);
        zonal = ZonalSettlementModule(m);
        vm.warp(EPOCH);
    }

    function ownerKey(uint32 id) internal pure returns (uint256) {
        return OWNER_KEY_BASE + id;
    }

    function meterKey(uint32 id) internal pure returns (uint256) {
        return METER_KEY_BASE + id;
    }

    /// @dev Registers homes 1..n (owner key OWNER_KEY_BASE + id, meter METER_KEY_BASE + id).
    function _registerHomes(uint32 n) internal {
        uint32 first = participants.participantCount();
        vm.startPrank(ADMIN);
        for (uint32 id = first; id < first + n; ++id) {
            participants.register(vm.addr(ownerKey(id)), vm.addr(meterKey(id)), 0, "home");
        }
        vm.stopPrank();
    }

    /// @dev Tokens minted to `payer` and deposited into `id`'s wallet by it.
    function _fund(uint32 id, uint256 amount) internal {
        token.mint(ADMIN, amount);
        vm.prank(ADMIN);
        token.approve(address(market), amount);
        vm.prank(ADMIN);
        wallets.deposit(id, amount);
    }

    function _bond(uint256 amount) internal {
        token.mint(ORACLE, amount);
        vm.prank(ORACLE);
        token.approve(address(market), amount);
        vm.prank(ORACLE);
        disputes.depositBond(amount);
    }

    function _reserve(uint256 amount) internal {
        token.mint(GRID_OPERATOR, amount);
        vm.prank(GRID_OPERATOR);
        token.approve(address(market), amount);
        vm.prank(GRID_OPERATOR);
        wallets.depositReserve(amount);
    }

    /// @dev A mandate covering intervals `from`..`until` (inclusive) of the fixture's clock.
    function _mandateOf(uint32 id, uint64 maxBuy, uint64 minSell, uint64 from, uint64 until, uint64 nonce)
        internal
        pure
        returns (MandatesModule.Mandate memory)
    {
        uint64 validUntil = until >= type(uint32).max ? type(uint64).max : _startOf(until + 1) - 1;
        return MandatesModule.Mandate(id, maxBuy, minSell, 0, 1_000_000, _startOf(from), validUntil, type(uint64).max, nonce);
    }

    function _startOf(uint64 k) internal pure returns (uint64) {
        return uint64(EPOCH) + k * LENGTH;
    }

    function _submitMandate(MandatesModule.Mandate memory m) internal {
        mandates.submitMandate(m, Signing.signMandate(ownerKey(m.participant), address(market), m));
    }

    /// @dev The standing mandates of issue 9's scenario: buy at most 0.30, sell at least 0.06.
    function _standingMandates(uint32 first, uint32 last, uint64 until) internal {
        for (uint32 id = first; id <= last; ++id) {
            _submitMandate(_mandateOf(id, 300_000, 60_000, 0, until, 1));
        }
    }

    function _endOf(uint64 k) internal pure returns (uint256) {
        return uint256(EPOCH) + (uint256(k) + 1) * LENGTH;
    }

    /// @dev Moves the chain's clock to the end of interval `k` if it is not past it yet.
    function _warpPast(uint64 k) internal {
        if (block.timestamp < _endOf(k)) vm.warp(_endOf(k));
    }

    /// @dev A draft for interval `k` with the market's terms and the given energies; the
    /// P2P price in the middle of the allowed range. Call SettlementBuilder.price after.
    function _draft(uint64 k, uint32[] memory ids, int256[] memory gridWh, int256[] memory p2pWh)
        internal
        view
        returns (SettlementBuilder.Draft memory d)
    {
        (uint256 index, uint256 imp, uint256 exp, uint256 fee, bool pab) = terms.termsAt(k);
        d.h = MarketStorage.Header(k, keccak256(abi.encode("inputs", k)), uint64(exp + (imp - fee - exp) / 2), uint32(index));
        (d.importPrice, d.exportPrice, d.fee, d.payAsBid) = (imp, exp, fee, pab);
        d.ids = ids;
        d.gridWh = gridWh;
        d.p2pWh = p2pWh;
        d.byOrder = new bool[](ids.length);
        d.excluded = new bool[](ids.length);
        d.limits = new uint64[](ids.length);
        SettlementBuilder.price(d, 0);
    }

    function _submit(SettlementBuilder.Draft memory d) internal {
        uint256[] memory words = SettlementBuilder.entries(d);
        vm.prank(ORACLE);
        settlement.settle(d.h, words, d.orders);
    }

    function _signedReading(uint32 id, uint64 k, uint64 importWh, uint64 exportWh)
        internal
        view
        returns (DisputeModule.Reading memory r, bytes memory signature)
    {
        r = DisputeModule.Reading(id, k, importWh, exportWh);
        signature = Signing.signReading(meterKey(id), address(market), r);
    }

    /// @dev How a dispute names a one-transaction settlement: its one chunk's hash ...
    function _oneChunkHash(uint256[] memory words) internal pure returns (bytes32[] memory hashes) {
        hashes = new bytes32[](1);
        hashes[0] = keccak256(abi.encodePacked(words));
    }

    /// @dev ... and the chunk itself, chunk 0.
    function _oneChunk(uint256[] memory words) internal pure returns (uint256[][] memory chunks) {
        chunks = new uint256[][](1);
        chunks[0] = words;
    }

    /// @dev The hashes of a settlement's two chunks, as a dispute names them.
    function _hashes(uint256[] memory a, uint256[] memory b) internal pure returns (bytes32[] memory hashes) {
        hashes = new bytes32[](2);
        (hashes[0], hashes[1]) = (keccak256(abi.encodePacked(a)), keccak256(abi.encodePacked(b)));
    }

    function _ids(uint32 a, uint32 b) internal pure returns (uint32[] memory ids) {
        ids = new uint32[](2);
        (ids[0], ids[1]) = (a, b);
    }

    function _wh(int256 a, int256 b) internal pure returns (int256[] memory x) {
        x = new int256[](2);
        (x[0], x[1]) = (a, b);
    }
}
