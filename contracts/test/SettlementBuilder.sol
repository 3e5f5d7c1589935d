// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MarketStorage} from "../src/MarketStorage.sol";
import {EntryChecks} from "../src/modules/EntryChecks.sol";

/// @dev Builds settlements the way the oracle must: P2P energy conserved, each wallet
/// change within one unit of its exact price at the interval's terms, and the rounding
/// chosen so that the grid's side (minus the others' sum) is within one unit too.
/// Written from the contract's documented rules, not from its code, so the tests check
/// one against the other.
library SettlementBuilder {
    int256 internal constant MILLI = 1000; // prices are per kWh, energies in Wh
    uint256 internal constant BY_ORDER = 1 << 255;
    uint256 internal constant EXCLUDED = 1 << 254;

    struct Draft {
        MarketStorage.Header h;
        uint256 importPrice; // the interval's tariffs and fee, from the market's terms
        uint256 exportPrice;
        uint256 fee;
        bool payAsBid;
        uint32[] ids;
        int256[] gridWh;
        int256[] p2pWh;
        int256[] amount;
        int256[] exactMilli; // exact wallet change in thousandths of a unit
        bool[] byOrder; // entry authorised by the next order rather than by a mandate
        bool[] excluded; // entry declares the participant left out (no money)
        uint64[] limits; // pay-as-bid: the limit price of each byOrder entry's order
        EntryChecks.OrderAuth[] orders; // in the order of the entries flagged byOrder
        uint32[] orderIds; // whose each order is
        int256 gridAmount; // minus the entries' sum
        uint64[] zonePrices; // a zonal settlement's price per zone; empty: uniform
        uint16[] zones; // zonal: each entry's zone (as registered on chain)
    }

    /// @dev Same layout as the Python encoder (node/chain/settlement.py) and SettlementEntry;
    /// flags are or-ed in by `entries`.
    function encode(uint32 id, int256 gridWh, int256 p2pWh, int256 amount) internal pure returns (uint256) {
        return (uint256(id) << 224) | (uint256(uint48(int48(gridWh))) << 176)
            | (uint256(uint48(int48(p2pWh))) << 128) | uint256(uint128(int128(amount)));
    }

    function entries(Draft memory d) internal pure returns (uint256[] memory words) {
        words = new uint256[](d.ids.length);
        for (uint256 i = 0; i < words.length; ++i) {
            words[i] = encode(d.ids[i], d.gridWh[i], d.p2pWh[i], d.amount[i]);
            if (i < d.byOrder.length && d.byOrder[i]) words[i] |= BY_ORDER;
            if (i < d.excluded.length && d.excluded[i]) words[i] |= EXCLUDED;
        }
    }

    function isExcluded(Draft memory d, uint256 i) internal pure returns (bool) {
        return i < d.excluded.length && d.excluded[i];
    }

    function floorDiv(int256 x, int256 y) internal pure returns (int256 q) {
        q = x / y;
        if (x % y != 0 && (x < 0) != (y < 0)) q -= 1;
    }

    /// @dev The price of entry `i`'s P2P energy (fee not included): the settlement's P2P
    /// price, or under pay-as-bid, for an entry authorised by an order, the order's limit
    /// clipped to the grid tariff of its side (a buyer pays at most the import tariff,
    /// fee included; a seller gets at least the export tariff).
    function p2pPrice(Draft memory d, uint256 i) internal pure returns (uint256) {
        if (d.zonePrices.length != 0) return d.zonePrices[d.zones[i]];
        if (!d.payAsBid || i >= d.byOrder.length || !d.byOrder[i]) return d.h.p2pPrice;
        uint256 limit = d.limits[i];
        if (d.gridWh[i] + d.p2pWh[i] >= 0) {
            uint256 allIn = limit < d.importPrice ? limit : d.importPrice;
            return allIn > d.fee ? allIn - d.fee : 0;
        }
        return limit > d.exportPrice ? limit : d.exportPrice;
    }

    /// @dev Exact wallet change (milli-units) of entry `i`: the grid tariff of the
    /// energy's direction for grid energy, its P2P price (plus the fee, bought) for
    /// energy traded with peers; buying costs.
    function exactMilliOf(Draft memory d, uint256 i) internal pure returns (int256) {
        if (isExcluded(d, i)) return 0;
        int256 tariff = int256(d.gridWh[i] > 0 ? d.importPrice : d.exportPrice);
        int256 fee = d.p2pWh[i] > 0 ? d.p2pWh[i] * int256(d.fee) : int256(0);
        return -(d.gridWh[i] * tariff) - d.p2pWh[i] * int256(p2pPrice(d, i)) - fee;
    }

    /// @dev Fills in amounts and the grid's amount. `seed` picks among the valid
    /// roundings (floor or ceil per entry) so both directions get exercised.
    function price(Draft memory d, uint256 seed) internal pure {
        uint256 n = d.ids.length;
        d.amount = new int256[](n);
        d.exactMilli = new int256[](n);
        int256 roundingMilli; // sum over entries of (amount * 1000 - exact)
        uint256 inexact;
        for (uint256 i = 0; i < n; ++i) {
            d.exactMilli[i] = exactMilliOf(d, i);
            d.amount[i] = floorDiv(d.exactMilli[i], MILLI);
            roundingMilli += d.amount[i] * MILLI - d.exactMilli[i];
            if (d.amount[i] * MILLI != d.exactMilli[i]) ++inexact;
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
        d.gridAmount = -total;
    }

    /// @dev The grid's exact change: the other side of every payment.
    function gridExactMilli(Draft memory d) internal pure returns (int256 sum) {
        for (uint256 i = 0; i < d.ids.length; ++i) {
            sum -= exactMilliOf(d, i);
        }
    }

    /// @dev What P2P buyers pay beyond what sellers get, milli-units: Σ p2pWh × price.
    function rentMilli(Draft memory d) internal pure returns (int256 sum) {
        for (uint256 i = 0; i < d.ids.length; ++i) {
            if (!isExcluded(d, i)) sum += d.p2pWh[i] * int256(p2pPrice(d, i));
        }
    }

    /// @dev Grid import and export of the non-excluded entries.
    function gridFlows(Draft memory d) internal pure returns (uint256 importWh, uint256 exportWh) {
        for (uint256 i = 0; i < d.ids.length; ++i) {
            if (isExcluded(d, i)) continue;
            if (d.gridWh[i] > 0) importWh += uint256(d.gridWh[i]);
            else exportWh += uint256(-d.gridWh[i]);
        }
    }
}
