// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EnergyMarket} from "../src/EnergyMarket.sol";
import {GridToken} from "../src/GridToken.sol";
import {SettlementEntry} from "../src/SettlementEntry.sol";
import {SettlementBuilder} from "./SettlementBuilder.sol";
import {Signing} from "./Signing.sol";
import {vm} from "./Vm.sol";

/// @notice Fuzz tests of the settlement encoding and of the payment check's boundary.
contract SettlementFuzzTest {
    address internal constant ADMIN = address(0xAD);
    address internal constant ORACLE = address(0x0AC1E);
    address internal constant GRID_OPERATOR = address(0x6D);

    EnergyMarket internal market;

    error Mismatch(string what, int256 expected, int256 actual);
    error WrongOutcome(bool expectedAccepted, bytes got);

    function setUp() public {
        GridToken token = new GridToken(address(this));
        market = new EnergyMarket(ADMIN, ORACLE, GRID_OPERATOR, token, type(uint64).max, type(uint64).max, 0);
        vm.startPrank(ADMIN);
        market.register(vm.addr(0xB1), 0, "one");
        market.register(vm.addr(0xB2), 0, "two");
        vm.stopPrank();
        // Mandates without price limits, so that only the payment check can reject.
        for (uint32 id = 1; id <= 2; ++id) {
            EnergyMarket.Mandate memory m =
                EnergyMarket.Mandate(id, type(uint64).max, 0, 0, 1_000_000, type(uint64).max, 1);
            market.submitMandate(m, Signing.signMandate(0xB0 + id, address(market), m));
        }
    }

    /// decode inverts the encoder for every field value, signs and flag included.
    function testFuzz_decodeInvertsEncode(uint32 id, int48 gridWh, int48 p2pWh, int128 amount, bool byOrder)
        public
        pure
    {
        id &= 0x7fffffff; // ids are 31 bits: the top bit is the byOrder flag
        uint256 word = SettlementBuilder.encode(id, gridWh, p2pWh, amount);
        if (byOrder) word |= SettlementBuilder.BY_ORDER;
        (uint32 id_, int256 gridWh_, int256 p2pWh_, int256 amount_) = SettlementEntry.decode(word);
        _equal("byOrder", byOrder ? int256(1) : int256(0), SettlementEntry.byOrder(word) ? int256(1) : int256(0));
        _equal("participant", int256(uint256(id)), int256(uint256(id_)));
        _equal("gridWh", gridWh, gridWh_);
        _equal("p2pWh", p2pWh, p2pWh_);
        _equal("amount", amount, amount_);
    }

    /// Every word is some entry: encoding what decode returns gives the word back, so
    /// no bit is ignored or read twice.
    function testFuzz_encodeInvertsDecode(uint256 word) public pure {
        (uint32 id, int256 gridWh, int256 p2pWh, int256 amount) = SettlementEntry.decode(word);
        uint256 flag = SettlementEntry.byOrder(word) ? SettlementBuilder.BY_ORDER : 0;
        if (SettlementBuilder.encode(id, gridWh, p2pWh, amount) | flag != word) revert Mismatch("word", 0, 1);
    }

    /// The same words as the Python encoder (node/settlement.py) produces.
    function test_decodesWordsFromThePythonEncoder() public pure {
        (uint32 id, int256 gridWh, int256 p2pWh, int256 amount) =
            SettlementEntry.decode(0x7fffffffffb5000000000012cfffffffffffffffffffffffffff92230);
        _equal("participant", 7, int256(uint256(id)));
        _equal("gridWh", -1200, gridWh);
        _equal("p2pWh", 300, p2pWh);
        _equal("amount", -450_000, amount);
        (id, gridWh, p2pWh, amount) =
            SettlementEntry.decode(0xffffffff7fffffffffff80000000000080000000000000000000000000000000);
        _equal("participant", int256(uint256(type(uint32).max >> 1)), int256(uint256(id)));
        _equal("byOrder", 1, SettlementEntry.byOrder(0xffffffff7fffffffffff80000000000080000000000000000000000000000000) ? int256(1) : int256(0));
        _equal("gridWh", type(int48).max, gridWh);
        _equal("p2pWh", type(int48).min, p2pWh);
        _equal("amount", type(int128).min, amount);
    }

    /// A wallet change is accepted iff it is the exact price rounded down or up
    /// (|amount - exact| < 1 unit); off by a unit or more it is rejected. Participant 1
    /// trades `energyWh` with the grid (import at the buy tariff, export at the sell
    /// tariff) or with participant 2 at the P2P price; the counterparty takes the
    /// opposite amount, so money is conserved and only the payment check can fail.
    function testFuzz_paymentAcceptedWithinRoundingRejectedOffByAUnit(
        int48 energyWh,
        uint64 price,
        bool p2p,
        int8 offset,
        bool wholeUnits
    ) public {
        price = uint64(price % 2_000_001);
        // Half the cases price in whole units per Wh, so the exact amount is an integer
        // and one unit off lands exactly on the check's boundary (|error| = 1000).
        if (wholeUnits) price -= price % 1000;
        int256 energy = int256(energyWh) % 1e12; // keeps amounts well inside a wallet
        int256 exactMilli = -energy * int256(uint256(price));
        // Candidates around the exact value: floor(x) + offset with offset in [-3, 3].
        int256 amount = SettlementBuilder.floorDiv(exactMilli, 1000) + int256(offset % 4);
        bool accepted = _withinOneUnit(amount, exactMilli);

        EnergyMarket.Settlement memory s;
        uint256[] memory entries;
        s.buyPrice = price;
        s.sellPrice = price;
        s.p2pPrice = price;
        if (p2p) {
            entries = new uint256[](2);
            entries[0] = SettlementBuilder.encode(1, 0, energy, amount);
            entries[1] = SettlementBuilder.encode(2, 0, -energy, -amount);
        } else {
            entries = new uint256[](1);
            entries[0] = SettlementBuilder.encode(1, energy, 0, amount);
            s.gridImportWh = energy > 0 ? uint64(uint256(energy)) : 0;
            s.gridExportWh = energy < 0 ? uint64(uint256(-energy)) : 0;
            s.gridAmount = int128(-amount);
        }
        vm.prank(ORACLE);
        try market.settle(s, entries, new EnergyMarket.OrderAuth[](0)) {
            if (!accepted) revert WrongOutcome(false, "");
        } catch (bytes memory got) {
            bytes memory rejection =
                abi.encodeWithSelector(EnergyMarket.PaymentMismatch.selector, uint32(1), amount, exactMilli);
            if (accepted || keccak256(got) != keccak256(rejection)) revert WrongOutcome(accepted, got);
        }
    }

    /// Written as "the amount is floor or ceil of the exact value", independently of
    /// the contract's "|1000 * amount - exact| < 1000".
    function _withinOneUnit(int256 amount, int256 exactMilli) internal pure returns (bool) {
        int256 floor = SettlementBuilder.floorDiv(exactMilli, 1000);
        int256 ceil = floor * 1000 == exactMilli ? floor : floor + 1;
        return amount == floor || amount == ceil;
    }

    function _equal(string memory what, int256 expected, int256 actual) internal pure {
        if (expected != actual) revert Mismatch(what, expected, actual);
    }
}
