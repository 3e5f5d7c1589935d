// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title PackedOrder
/// @notice A participant's signed order as it rides in settlement calldata: the fields
/// the settlement does not already fix, packed into one 256-bit word so that an order
/// costs one calldata word plus its EIP-2098 compact signature (r, vs):
///
///     bits 255..248  side                 uint8   (0 buy, 1 sell)
///     bits 247..184  energy, Wh           uint64
///     bits 183..120  limit price          uint64  (minor units per kWh)
///     bits 119..56   expiry               uint64  (unix seconds, inclusive)
///     bits 55..0     nonce                uint56  (signed as uint64; larger nonces cannot ride)
///
/// The participant and the interval are not packed: the settlement fixes them, and they
/// are part of the signed digest, so an order signed for another participant or interval
/// does not recover to the participant's owner.
library PackedOrder {
    uint8 internal constant BUY = 0;
    uint8 internal constant SELL = 1;

    /// @dev The EIP-712 type of node/signing.py's Order, character for character.
    bytes32 internal constant ORDER_TYPEHASH = keccak256(
        "Order(uint32 participant,uint64 interval,uint8 side,uint64 energyWh,uint64 limitPrice,uint64 expiry,uint64 nonce)"
    );

    /// @notice Splits a packed order into its fields.
    function decode(uint256 word)
        internal
        pure
        returns (uint8 side, uint64 energyWh, uint64 limitPrice, uint64 expiry, uint64 nonce)
    {
        side = uint8(word >> 248);
        energyWh = uint64(word >> 184);
        limitPrice = uint64(word >> 120);
        expiry = uint64(word >> 56);
        nonce = uint64(word & 0xffffffffffffff);
    }

    /// @notice The EIP-712 digest `participant` signed for this order in `interval`.
    /// @dev Hashes in scratch memory above the free memory pointer without moving it:
    /// `abi.encode` would allocate 256 bytes per order, and memory expansion grows
    /// quadratically over a settlement of many orders.
    function digest(bytes32 domainSeparator, uint32 participant, uint64 interval, uint256 word)
        internal
        pure
        returns (bytes32 result)
    {
        bytes32 typehash = ORDER_TYPEHASH;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            let mask64 := 0xffffffffffffffff
            mstore(ptr, typehash)
            mstore(add(ptr, 0x20), participant)
            mstore(add(ptr, 0x40), interval)
            mstore(add(ptr, 0x60), shr(248, word))
            mstore(add(ptr, 0x80), and(shr(184, word), mask64))
            mstore(add(ptr, 0xa0), and(shr(120, word), mask64))
            mstore(add(ptr, 0xc0), and(shr(56, word), mask64))
            mstore(add(ptr, 0xe0), and(word, 0xffffffffffffff))
            let structHash := keccak256(ptr, 0x100)
            // MessageHashUtils.toTypedDataHash, in the same scratch space.
            mstore(ptr, hex"1901")
            mstore(add(ptr, 0x02), domainSeparator)
            mstore(add(ptr, 0x22), structHash)
            result := keccak256(ptr, 0x42)
        }
    }

    /// @notice The signer of `hash` with EIP-2098 signature (r, vs), or address(0) if the
    /// signature is invalid or malleable (s in the upper half), as OpenZeppelin's ECDSA.
    function recover(bytes32 hash, bytes32 r, bytes32 vs) internal view returns (address signer) {
        assembly ("memory-safe") {
            let s := and(vs, 0x7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff)
            if iszero(gt(s, 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0)) {
                let ptr := mload(0x40)
                mstore(ptr, hash)
                mstore(add(ptr, 0x20), add(27, shr(255, vs)))
                mstore(add(ptr, 0x40), r)
                mstore(add(ptr, 0x60), s)
                mstore(0x00, 0)
                pop(staticcall(gas(), 0x01, ptr, 0x80, 0x00, 0x20))
                signer := mload(0x00)
            }
        }
    }
}
