// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EntryChecks} from "../src/modules/EntryChecks.sol";
import {MarketFixture} from "./MarketFixture.sol";
import {SettlementBuilder} from "./SettlementBuilder.sol";
import {Signing} from "./Signing.sol";
import {console, vm} from "./Vm.sol";

/// @notice Rough gas per entry in forge (calldata not charged here; bench/ measures the
/// real transactions).
contract GasTest is MarketFixture {
    uint32 internal constant N = 200;

    function setUp() public {
        _deployMarket(_tariffs(0, false), type(uint64).max, type(uint64).max);
        _registerHomes(N);
        for (uint32 id = 0; id <= N; ++id) _fund(id, 1e9);
        _standingMandates(1, N, type(uint32).max);
        _bond(REWARD);
    }

    function _drafted(uint64 k, bool byOrder) internal view returns (SettlementBuilder.Draft memory d, uint256[] memory words) {
        uint32[] memory ids = new uint32[](N);
        int256[] memory g = new int256[](N);
        int256[] memory p = new int256[](N);
        for (uint32 i = 0; i < N; ++i) {
            ids[i] = i + 1;
            g[i] = i % 2 == 0 ? int256(1000 + int256(uint256(i))) : -int256(800 + int256(uint256(i)));
        }
        p[0] = 500; p[1] = -500; g[0] -= 500; g[1] += 500;
        d = _draft(k, ids, g, p);
        if (byOrder) {
            d.orders = new EntryChecks.OrderAuth[](N);
            for (uint32 i = 0; i < N; ++i) {
                d.byOrder[i] = true;
                int256 net = g[i] + p[i];
                Signing.Order memory o = net >= 0
                    ? Signing.Order(Signing.BUY, uint64(uint256(net)) + 100, 300_000, type(uint64).max, i + 1)
                    : Signing.Order(Signing.SELL, uint64(uint256(-net)) + 100, 60_000, type(uint64).max, i + 1);
                d.orders[i] = Signing.signOrder(ownerKey(i + 1), address(market), i + 1, k, o);
            }
        }
        words = SettlementBuilder.entries(d);
    }

    function test_gasPerMandateEntry() public {
        _warpPast(2);
        (SettlementBuilder.Draft memory d, uint256[] memory words) = _drafted(0, false);
        vm.prank(ORACLE);
        uint256 before = gasleft();
        settlement.settle(d.h, words, d.orders);
        console.log("mandate entries, gas per entry (no calldata)", (before - gasleft()) / N);
    }

    function test_gasPerOrderEntry() public {
        _warpPast(2);
        (SettlementBuilder.Draft memory d, uint256[] memory words) = _drafted(0, true);
        vm.prank(ORACLE);
        uint256 before = gasleft();
        settlement.settle(d.h, words, d.orders);
        console.log("order entries, gas per entry (no calldata)", (before - gasleft()) / N);
    }
}
