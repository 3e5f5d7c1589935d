// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title AccountWord
/// @notice Everything a settlement reads and writes for one participant, in one storage
/// word, so that settling a participant costs one cold read and one write:
///
///     bits   0..71   balance, units           int72   (negative: owed, within the credit limit)
///     bits  72..111  credit limit, units      uint40  (how far below zero the balance may go)
///     bits 112..127  zone                     uint16
///     bits 128..135  flags                    uint8   (ACTIVE, FROZEN, SHARE)
///     bits 136..167  lock bucket              uint32  (newest bucket holding locked credit)
///     bits 168..211  locked credit, even      uint44  (credits of the even bucket)
///     bits 212..255  locked credit, odd       uint44  (credits of the odd bucket)
///
/// Settlement credits are locked until final. Time is cut into buckets of one dispute
/// window W (bucket = timestamp / W); a credit settled in bucket b is final from
/// (b + 2) x W on, when no dispute can reach its interval any more. At any time only
/// the current bucket and the one before can hold credit that is not final, so two
/// amounts (by the bucket's parity) and the newest bucket's number suffice: writing
/// bucket b + 1 or later releases whatever the older buckets held.
library AccountWord {
    uint256 internal constant ACTIVE = 1;
    uint256 internal constant FROZEN = 2;
    /// @dev A share participant: a home's account in a shared battery (SharedBatteryModule),
    /// which pays the storage fee on the energy it takes in. Set at registration, never after.
    uint256 internal constant SHARE = 4;

    uint256 private constant CREDIT_SHIFT = 72;
    uint256 private constant ZONE_SHIFT = 112;
    uint256 private constant FLAGS_SHIFT = 128;
    uint256 private constant BUCKET_SHIFT = 136;
    uint256 private constant LOCKED_SHIFT = 168;
    uint256 private constant LOCKED_BITS = 44;
    uint256 internal constant LOCKED_MAX = (1 << 44) - 1;
    uint256 internal constant CREDIT_MAX = (1 << 40) - 1;
    uint256 private constant BALANCE_MASK = (1 << 72) - 1;
    uint256 private constant BUCKET_MASK = uint256(type(uint32).max) << BUCKET_SHIFT;
    uint256 private constant LOCKS_MASK = ((1 << 88) - 1) << LOCKED_SHIFT;

    /// @notice A new active participant's word.
    function create(uint16 zone_) internal pure returns (uint256) {
        return (uint256(zone_) << ZONE_SHIFT) | (ACTIVE << FLAGS_SHIFT);
    }

    function balance(uint256 w) internal pure returns (int256) {
        return int72(uint72(w));
    }

    function creditLimit(uint256 w) internal pure returns (uint256) {
        return uint40(w >> CREDIT_SHIFT);
    }

    function zone(uint256 w) internal pure returns (uint16) {
        return uint16(w >> ZONE_SHIFT);
    }

    function active(uint256 w) internal pure returns (bool) {
        return (w >> FLAGS_SHIFT) & ACTIVE != 0;
    }

    function frozen(uint256 w) internal pure returns (bool) {
        return (w >> FLAGS_SHIFT) & FROZEN != 0;
    }

    function isShare(uint256 w) internal pure returns (bool) {
        return (w >> FLAGS_SHIFT) & SHARE != 0;
    }

    /// @notice Credit not yet final at bucket `current` (>= every bucket written so far).
    function locked(uint256 w, uint256 current) internal pure returns (uint256 total) {
        uint256 newest = uint32(w >> BUCKET_SHIFT);
        // Bucket b is final once current >= b + 2; the older slot holds newest - 1.
        // newest < 2^32: no overflow.
        unchecked {
            if (newest + 1 < current) return 0;
            total = (w >> _shift(newest)) & LOCKED_MAX;
            if (newest == current) total += (w >> _shift(newest + 1)) & LOCKED_MAX;
        }
    }

    /// @notice Balance less the credit not yet final: what is spendable now (may be negative).
    function spendable(uint256 w, uint256 current) internal pure returns (int256) {
        // locked < 2^45 and |balance| < 2^71: no overflow.
        unchecked {
            return balance(w) - int256(locked(w, current));
        }
    }

    function withBalance(uint256 w, int256 newBalance) internal pure returns (uint256) {
        return (w & ~BALANCE_MASK) | (uint256(newBalance) & BALANCE_MASK);
    }

    function withCreditLimit(uint256 w, uint256 limit) internal pure returns (uint256) {
        return (w & ~(CREDIT_MAX << CREDIT_SHIFT)) | (limit << CREDIT_SHIFT);
    }

    function withZone(uint256 w, uint16 zone_) internal pure returns (uint256) {
        return (w & ~(uint256(0xffff) << ZONE_SHIFT)) | (uint256(zone_) << ZONE_SHIFT);
    }

    function withFlag(uint256 w, uint256 flag, bool on) internal pure returns (uint256) {
        return on ? w | (flag << FLAGS_SHIFT) : w & ~(flag << FLAGS_SHIFT);
    }

    /// @notice `w` with `amount` more credit locked in bucket `current`; ok false if the
    /// bucket's amount would leave its 44 bits.
    function lock(uint256 w, uint256 amount, uint256 current) internal pure returns (uint256, bool ok) {
        uint256 newest = uint32(w >> BUCKET_SHIFT);
        uint256 shift = _shift(current);
        if (current != newest) {
            // The slot of `current`'s parity held bucket current - 2 or older: final.
            // Two or more buckets on, the other slot is final too.
            uint256 clear = current > newest + 1 ? LOCKS_MASK : LOCKED_MAX << shift;
            w = (w & ~(clear | BUCKET_MASK)) | (current << BUCKET_SHIFT);
        }
        // amount < 2^128 and the slot < 2^44: no overflow; the sum fits its slot, so
        // adding it in place carries into nothing.
        unchecked {
            if (((w >> shift) & LOCKED_MAX) + amount > LOCKED_MAX) return (w, false);
            return (w + (amount << shift), true);
        }
    }

    /// @notice `w` with `amount` of credit released that a reversed settlement locked in
    /// bucket `bucket` (a chunked one possibly partly in the bucket after). Takes from
    /// the older bucket first, so that nothing is released before it is final. The
    /// bucket must not be final yet; ok false if the two buckets hold less.
    function unlock(uint256 w, uint256 amount, uint256 bucket) internal pure returns (uint256, bool ok) {
        uint256 newest = uint32(w >> BUCKET_SHIFT);
        if (bucket > newest || bucket + 1 < newest) return (w, false);
        uint256 held = _slot(w, bucket & 1);
        uint256 taken = held < amount ? held : amount;
        w = _setSlot(w, bucket & 1, held - taken);
        if (taken == amount) return (w, true);
        if (newest != bucket + 1) return (w, false);
        uint256 rest = amount - taken;
        uint256 next = _slot(w, newest & 1);
        if (next < rest) return (w, false);
        return (_setSlot(w, newest & 1, next - rest), true);
    }

    /// @dev Where the locked credit of bucket `bucket` sits (by its parity).
    function _shift(uint256 bucket) private pure returns (uint256) {
        return (bucket & 1) == 0 ? LOCKED_SHIFT : LOCKED_SHIFT + LOCKED_BITS;
    }

    function _slot(uint256 w, uint256 parity) private pure returns (uint256) {
        return (w >> (LOCKED_SHIFT + parity * LOCKED_BITS)) & LOCKED_MAX;
    }

    function _setSlot(uint256 w, uint256 parity, uint256 amount) private pure returns (uint256) {
        uint256 shift = LOCKED_SHIFT + parity * LOCKED_BITS;
        return (w & ~(LOCKED_MAX << shift)) | (amount << shift);
    }
}
