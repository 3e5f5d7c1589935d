// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title MandateWord
/// @notice What a settlement checks of a participant's mandate in force, in one storage
/// word (one extra cold read per mandate-authorised entry):
///
///     bits   0..31   max buy price, units/kWh     uint32
///     bits  32..63   min sell price, units/kWh    uint32
///     bits  64..103  valid from, unix s           uint40  (inclusive)
///     bits 104..143  valid until, unix s          uint40  (inclusive)
///     bits 144..175  max energy per interval, Wh  uint32  (of net energy, either way)
///     bits 176..215  nonce                        uint40
///     bits 216..255  in force since, unix s       uint40  (when it was submitted)
///
/// A mandate covers an interval that lies wholly within its validity, by the
/// interval's own time on the market's clock (never by when it is settled).
/// 0 means no mandate; a revoked one keeps its nonce with validFrom > validUntil.
library MandateWord {
    uint256 internal constant PRICE_MAX = (1 << 32) - 1;
    uint256 internal constant TIME_MAX = (1 << 40) - 1;
    uint256 internal constant NONCE_MAX = (1 << 40) - 1;

    function pack(
        uint256 maxBuy,
        uint256 minSell,
        uint256 from_,
        uint256 until,
        uint256 maxWh,
        uint256 nonce_,
        uint256 since_
    ) internal pure returns (uint256) {
        return maxBuy | (minSell << 32) | (from_ << 64) | (until << 104) | (maxWh << 144) | (nonce_ << 176)
            | (since_ << 216);
    }

    function maxBuyPrice(uint256 w) internal pure returns (uint256) {
        return uint32(w);
    }

    function minSellPrice(uint256 w) internal pure returns (uint256) {
        return uint32(w >> 32);
    }

    function validFrom(uint256 w) internal pure returns (uint64) {
        return uint40(w >> 64);
    }

    function validUntil(uint256 w) internal pure returns (uint64) {
        return uint40(w >> 104);
    }

    function maxEnergyWh(uint256 w) internal pure returns (uint256) {
        return uint32(w >> 144);
    }

    function nonce(uint256 w) internal pure returns (uint64) {
        return uint40(w >> 176);
    }

    function since(uint256 w) internal pure returns (uint256) {
        return uint40(w >> 216);
    }

    /// @notice The mandate covers the interval [startsAt, endsAt): in force, and valid
    /// from its first second to its last. A mandate's word is never 0: it holds when it
    /// was submitted.
    function covers(uint256 w, uint256 startsAt, uint256 endsAt) internal pure returns (bool) {
        return w != 0 && validFrom(w) <= startsAt && endsAt <= uint256(validUntil(w)) + 1;
    }

    /// @notice The same mandate, revoked: its nonce kept, valid for no interval.
    function revoked(uint256 w) internal pure returns (uint256) {
        return pack(0, 0, 1, 0, 0, nonce(w), since(w));
    }

    /// @notice The same mandate, in force since `t`.
    function renewed(uint256 w, uint256 t) internal pure returns (uint256) {
        return (w & ((1 << 216) - 1)) | (t << 216);
    }

    function isRevoked(uint256 w) internal pure returns (bool) {
        return w != 0 && validFrom(w) > validUntil(w);
    }
}

/// @title OwnerWord
/// @notice A participant's owner key and its two cancellation floors, in one word (read
/// once per order-authorised entry, for the signature and the floor together):
///
///     bits   0..159  owner                        address
///     bits 160..215  order nonce floor            uint56  (orders below it are cancelled)
///     bits 216..255  mandate nonce floor          uint40  (mandates below it are revoked)
library OwnerWord {
    uint256 internal constant ORDER_FLOOR_MAX = (1 << 56) - 1;
    uint256 internal constant MANDATE_FLOOR_MAX = (1 << 40) - 1;

    function owner(uint256 w) internal pure returns (address) {
        return address(uint160(w));
    }

    function orderFloor(uint256 w) internal pure returns (uint64) {
        return uint56(w >> 160);
    }

    function mandateFloor(uint256 w) internal pure returns (uint64) {
        return uint40(w >> 216);
    }

    function withOwner(uint256 w, address owner_) internal pure returns (uint256) {
        return (w & ~uint256(type(uint160).max)) | uint256(uint160(owner_));
    }

    function withOrderFloor(uint256 w, uint256 floor) internal pure returns (uint256) {
        return (w & ~(ORDER_FLOOR_MAX << 160)) | (floor << 160);
    }

    function withMandateFloor(uint256 w, uint256 floor) internal pure returns (uint256) {
        return (w & ~(MANDATE_FLOOR_MAX << 216)) | (floor << 216);
    }
}
