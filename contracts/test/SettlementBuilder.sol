// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EnergyMarket} from "../src/EnergyMarket.sol";

/// @dev Builds settlements the way the oracle must: P2P energy conserved, each wallet
/// change within one unit of its exact price, and the rounding chosen so that the
/// grid's side (which absorbs the others) is within one unit too. Written from the
/// contract's documented rules, not from its code, so the tests check one against
/// the other.
library SettlementBuilder {
    int256 internal constant MILLI = 1000; // prices are per kWh, energies in Wh

    struct Draft {
        EnergyMarket.Settlement s;
        uint32[] ids;
        int256[] gridWh;
        int256[] p2pWh;
        int256[] amount;
        int256[] exactMilli; // exact wallet change in thousandths of a unit
        bool[] byOrder; // entry authorised by the next order rather than by a mandate
        uint64[] limits; // pay-as-bid: the limit price of each byOrder entry's order
        EnergyMarket.OrderAuth[] orders; // in the order of the entries flagged byOrder
        uint32[] orderIds; // whose each order is (the contract infers it from the entries)
    }

    uint256 internal constant BY_ORDER = 1 << 255;

    /// @dev Same layout as the Python encoder (node/settlement.py) and SettlementEntry;
    /// the byOrder flag (bit 255) is or-ed in by `entries`.
    function encode(uint32 id, int256 gridWh, int256 p2pWh, int256 amount) internal pure returns (uint256) {
        return (uint256(id) << 224) | (uint256(uint48(int48(gridWh))) << 176)
            | (uint256(uint48(int48(p2pWh))) << 128) | uint256(uint128(int128(amount)));
    }

    function entries(Draft memory d) internal pure returns (uint256[] memory words) {
        words = new uint256[](d.ids.length);
        for (uint256 i = 0; i < words.length; ++i) {
            words[i] = encode(d.ids[i], d.gridWh[i], d.p2pWh[i], d.amount[i]);
            if (i < d.byOrder.length && d.byOrder[i]) words[i] |= BY_ORDER;
        }
    }

    function floorDiv(int256 x, int256 y) internal pure returns (int256 q) {
        q = x / y;
        if (x % y != 0 && (x < 0) != (y < 0)) q -= 1;
    }

    /// @dev The price of entry `i`'s P2P energy: the settlement's P2P price, or in a
    /// pay-as-bid settlement, for an entry authorised by an order, the order's limit
    /// clipped to the grid tariff of its side (a buyer, net energy in, pays at most the
    /// import tariff; a seller gets at least the export tariff).
    function p2pPrice(Draft memory d, uint256 i) internal pure returns (uint256) {
        if (!d.s.payAsBid || i >= d.byOrder.length || !d.byOrder[i]) return d.s.p2pPrice;
        uint256 limit = d.limits[i];
        if (d.gridWh[i] + d.p2pWh[i] >= 0) return limit < d.s.buyPrice ? limit : d.s.buyPrice;
        return limit > d.s.sellPrice ? limit : d.s.sellPrice;
    }

    /// @dev Exact wallet change (milli-units) of entry `i`: the grid tariff of the
    /// energy's direction for grid energy, its P2P price for energy traded with peers;
    /// buying costs.
    function exactMilliOf(Draft memory d, uint256 i) internal pure returns (int256) {
        int256 tariff = int256(uint256(d.gridWh[i] > 0 ? d.s.buyPrice : d.s.sellPrice));
        return -(d.gridWh[i] * tariff) - d.p2pWh[i] * int256(p2pPrice(d, i));
    }

    /// @dev Fills in amounts, grid totals and the grid's amount. `seed` picks among the
    /// valid roundings (floor or ceil per entry) so both directions get exercised.
    function price(Draft memory d, uint256 seed) internal pure {
        uint256 n = d.ids.length;
        d.amount = new int256[](n);
        d.exactMilli = new int256[](n);
        int256 roundingMilli; // sum over entries of (amount * 1000 - exact)
        uint256 inexact;
        uint64 importWh;
        uint64 exportWh;
        for (uint256 i = 0; i < n; ++i) {
            d.exactMilli[i] = exactMilliOf(d, i);
            d.amount[i] = floorDiv(d.exactMilli[i], MILLI);
            roundingMilli += d.amount[i] * MILLI - d.exactMilli[i];
            if (d.amount[i] * MILLI != d.exactMilli[i]) ++inexact;
            if (d.gridWh[i] > 0) importWh += uint64(uint256(d.gridWh[i]));
            else exportWh += uint64(uint256(-d.gridWh[i]));
        }
        // The grid's amount is minus the others' sum, so its rounding error is minus
        // theirs: it must end strictly inside (-1000, 1000). Each entry rounded up
        // instead of down adds exactly 1000; pick how many (one or two choices work).
        uint256 ups;
        while (roundingMilli + int256(ups) * MILLI <= -MILLI) ++ups;
        if (ups < inexact && roundingMilli + int256(ups + 1) * MILLI < MILLI && seed & 1 == 1) ++ups;
        uint256 start = n == 0 ? 0 : (seed >> 1) % n;
        for (uint256 k = 0; k < n && ups > 0; ++k) {
            uint256 i = (start + k) % n;
            if (d.amount[i] * MILLI != d.exactMilli[i]) {
                d.amount[i] += 1;
                --ups;
            }
        }
        int256 total;
        for (uint256 i = 0; i < n; ++i) {
            total += d.amount[i];
        }
        d.s.gridImportWh = importWh;
        d.s.gridExportWh = exportWh;
        d.s.gridAmount = int128(-total);
    }

    /// @dev The grid's exact change: it takes the other side of every payment (the
    /// tariffs of the grid energy and, under pay-as-bid, the spread of the P2P trades).
    function gridExactMilli(Draft memory d) internal pure returns (int256 sum) {
        for (uint256 i = 0; i < d.ids.length; ++i) {
            sum -= exactMilliOf(d, i);
        }
    }
}
