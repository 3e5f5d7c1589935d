// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title TermsWord
/// @notice One version of the market's terms, in one storage word; it applies from
/// `fromInterval` until the next version's. Prices are minor units per kWh.
///
///     bits   0..31   from interval                uint32
///     bits  32..63   import price, off peak       uint32
///     bits  64..95   import price, peak hours     uint32
///     bits  96..127  export price                 uint32
///     bits 128..159  P2P fee (paid by P2P buyers) uint32
///     bits 160..183  peak hours                   uint24  (bit h: UTC hour h is peak)
///     bit  184       pay-as-bid                   bool    (else uniform P2P price)
///     bits 192..223  storage fee                  uint32  (paid per kWh a share participant takes in)
///     bits 224..253  storage operator             uint30  (the participant the storage fees go to)
///
/// Room to grow: bits 185..191 and 254..255 are free (e.g. a zone price rule).
library TermsWord {
    uint256 internal constant PRICE_MAX = (1 << 32) - 1;
    uint256 internal constant HOURS_MAX = (1 << 24) - 1;
    uint256 internal constant OPERATOR_MAX = (1 << 30) - 1;
    uint256 private constant STORAGE_MASK = ((1 << 62) - 1) << 192;

    function pack(
        uint256 from_,
        uint256 import_,
        uint256 peakImport,
        uint256 export_,
        uint256 fee,
        uint256 peak,
        bool pab
    ) internal pure returns (uint256) {
        return from_ | (import_ << 32) | (peakImport << 64) | (export_ << 96) | (fee << 128) | (peak << 160)
            | ((pab ? uint256(1) : 0) << 184);
    }

    function fromInterval(uint256 w) internal pure returns (uint64) {
        return uint32(w);
    }

    function importPrice(uint256 w) internal pure returns (uint256) {
        return uint32(w >> 32);
    }

    function peakImportPrice(uint256 w) internal pure returns (uint256) {
        return uint32(w >> 64);
    }

    function exportPrice(uint256 w) internal pure returns (uint256) {
        return uint32(w >> 96);
    }

    function p2pFee(uint256 w) internal pure returns (uint256) {
        return uint32(w >> 128);
    }

    function peakHours(uint256 w) internal pure returns (uint32) {
        return uint24(w >> 160);
    }

    function payAsBid(uint256 w) internal pure returns (bool) {
        return (w >> 184) & 1 != 0;
    }

    /// @notice The storage fee (minor units per kWh) a share participant pays on the
    /// energy it takes into its account (see SharedBatteryModule).
    function storageFee(uint256 w) internal pure returns (uint256) {
        return uint32(w >> 192);
    }

    /// @notice The participant the storage fees go to: the shared batteries' owner.
    function storageOperator(uint256 w) internal pure returns (uint32) {
        return uint32(w >> 224) & uint32(OPERATOR_MAX);
    }

    /// @notice `w` with the storage fee and operator replaced (`fee` < 2^32, `operator` < 2^30).
    function withStorage(uint256 w, uint256 fee, uint256 operator) internal pure returns (uint256) {
        return (w & ~STORAGE_MASK) | (fee << 192) | (operator << 224);
    }

    /// @notice `w`'s storage fee and operator, nothing else: what a new version carries over.
    function storagePart(uint256 w) internal pure returns (uint256) {
        return w & STORAGE_MASK;
    }

    /// @notice The import price of an interval that starts at unix time `start`.
    function importPriceAt(uint256 w, uint256 start) internal pure returns (uint256) {
        uint256 hour = (start / 3600) % 24;
        return (w >> (160 + hour)) & 1 != 0 ? peakImportPrice(w) : importPrice(w);
    }
}

/// @title IntervalWord
/// @notice What the grid operator set for one interval (or, for the default capacity,
/// for every interval without its own), in one word:
///
///     bit  0         capacity set                 bool
///     bit  1         prices set                   bool
///     bits   8..55   import capacity, Wh          uint48
///     bits  56..103  export capacity, Wh          uint48
///     bits 104..135  import price                 uint32  (overrides the terms' tariff)
///     bits 136..167  export price                 uint32
///
/// Room to grow: bits 168..255 are free (e.g. per-zone capacities by reference).
library IntervalWord {
    uint256 internal constant CAPACITY_SET = 1;
    uint256 internal constant PRICES_SET = 2;
    uint256 internal constant WH_MAX = (1 << 48) - 1;
    uint256 private constant CAPACITY_MASK = ((1 << 96) - 1) << 8;
    uint256 private constant PRICES_MASK = ((1 << 64) - 1) << 104;

    function withCapacity(uint256 w, uint256 importCap, uint256 exportCap) internal pure returns (uint256) {
        return (w & ~CAPACITY_MASK) | CAPACITY_SET | (importCap << 8) | (exportCap << 56);
    }

    function withPrices(uint256 w, uint256 importPrice_, uint256 exportPrice_) internal pure returns (uint256) {
        return (w & ~PRICES_MASK) | PRICES_SET | (importPrice_ << 104) | (exportPrice_ << 136);
    }

    function hasCapacity(uint256 w) internal pure returns (bool) {
        return w & CAPACITY_SET != 0;
    }

    function hasPrices(uint256 w) internal pure returns (bool) {
        return w & PRICES_SET != 0;
    }

    function importWh(uint256 w) internal pure returns (uint256) {
        return uint48(w >> 8);
    }

    function exportWh(uint256 w) internal pure returns (uint256) {
        return uint48(w >> 56);
    }

    function importPrice(uint256 w) internal pure returns (uint256) {
        return uint32(w >> 104);
    }

    function exportPrice(uint256 w) internal pure returns (uint256) {
        return uint32(w >> 136);
    }
}

/// @notice A default capacity (the community's, or a zone's) and the one it replaced, in
/// one word, so that a default changed while an interval runs or awaits settlement does
/// not reach back into it. Bits 0..103 are an IntervalWord capacity (the current one):
///
///     bit  0         current set                  bool
///     bit  2         prior set                    bool
///     bits   8..103  current import, export      IntervalWord layout
///     bits 104..151  prior import capacity, Wh    uint48
///     bits 152..199  prior export capacity, Wh    uint48
///     bits 200..239  changedAt: when current was set, unix seconds  uint40
///
/// An interval that started at or after changedAt gets the current default; one that
/// started before (and after the market's deployment) the prior; one that started
/// before the deployment (history a replay settles) the current.
library DefaultCapacityWord {
    uint256 private constant PRIOR_SET = 4;
    uint256 private constant CURRENT_MASK = ((1 << 96) - 1) << 8;

    /// @dev `w` with (importWh, exportWh) current from `at` on and its current as prior.
    function changed(uint256 w, uint256 importWh, uint256 exportWh, uint256 at) internal pure returns (uint256) {
        uint256 prior = IntervalWord.hasCapacity(w) ? PRIOR_SET | ((w & CURRENT_MASK) << 96) : 0;
        return IntervalWord.withCapacity(0, importWh, exportWh) | prior | (at << 200);
    }

    /// @dev When the current default was set.
    function changedAt(uint256 w) internal pure returns (uint256) {
        return uint40(w >> 200);
    }

    /// @dev The capacity in force for an interval starting at `startsAt` in a market
    /// deployed at `deployedAt`, for IntervalWord's capacity getters (hasCapacity says
    /// whether any was set; the other bits are not an IntervalWord's).
    function inForce(uint256 w, uint256 startsAt, uint256 deployedAt) internal pure returns (uint256) {
        if (startsAt >= changedAt(w) || startsAt < deployedAt) return w;
        // PRIOR_SET (bit 2) becomes the capacity flag (bit 0).
        return ((w >> 96) & CURRENT_MASK) | ((w >> 2) & IntervalWord.CAPACITY_SET);
    }
}
