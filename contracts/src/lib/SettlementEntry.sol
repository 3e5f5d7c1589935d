// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title SettlementEntry
/// @notice One participant's part of a settlement, packed into a single 256-bit word so
/// that a settlement costs one calldata word per participant instead of four:
///
///     bit  255       authorised by order   bool    (else by the participant's mandate)
///     bit  254       excluded              bool    (left out, with its metered net energy)
///     bits 253..224  participant id        uint30
///     bits 223..176  grid energy, Wh       int48   (+ imported from the grid, - exported)
///     bits 175..128  P2P energy, Wh        int48   (+ bought from peers,      - sold)
///     bits 127..0    wallet change, units  int128  (+ credited,               - debited)
///
/// An excluded entry moves no money and no energy: it declares that the participant's
/// metered net energy (its grid field) could not be settled within its mandate or its
/// credit, which the contract checks, so that leaving it out is not an omission.
library SettlementEntry {
    uint256 internal constant BY_ORDER = 1 << 255;
    uint256 internal constant EXCLUDED = 1 << 254;

    /// @notice Splits a packed entry into its fields (sign-extending the signed ones).
    function decode(uint256 word)
        internal
        pure
        returns (uint32 id, int256 gridWh, int256 p2pWh, int256 amount)
    {
        id = uint32(word >> 224) & 0x3fffffff;
        gridWh = int48(uint48(word >> 176));
        p2pWh = int48(uint48(word >> 128));
        amount = int128(uint128(word));
    }

    /// @notice The participant of an entry and its wallet change.
    function participantAndAmount(uint256 word) internal pure returns (uint32 id, int256 amount) {
        id = uint32(word >> 224) & 0x3fffffff;
        amount = int128(uint128(word));
    }

    /// @notice The participant of an entry.
    function participant(uint256 word) internal pure returns (uint32) {
        return uint32(word >> 224) & 0x3fffffff;
    }

    /// @notice Whether the entry is authorised by an order in the settlement's calldata.
    /// @dev A flag bit instead of the order naming its participant saves a calldata word
    /// per order; participant ids stay below 2^30 (the registry enforces it).
    function byOrder(uint256 word) internal pure returns (bool) {
        return word & BY_ORDER != 0;
    }

    /// @notice Whether the entry declares a participant left out of the interval.
    function excluded(uint256 word) internal pure returns (bool) {
        return word & EXCLUDED != 0;
    }

    /// @notice The entry's net energy into the home (grid + P2P), Wh.
    function netWh(uint256 word) internal pure returns (int256) {
        return int256(int48(uint48(word >> 176))) + int256(int48(uint48(word >> 128)));
    }
}
