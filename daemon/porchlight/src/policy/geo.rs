//! Points on the map and the distance between them.

use serde::{Deserialize, Serialize};

/// Mean Earth radius in metres (IUGG), good to ~0.5% anywhere: far finer
/// than a camera's coverage or a request's radius.
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A WGS 84 position in decimal degrees.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

impl GeoPoint {
    /// A point, if both coordinates are finite and in range
    /// (latitude -90..=90, longitude -180..=180).
    pub fn new(lat: f64, lon: f64) -> Result<GeoPoint, String> {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(format!("latitude {lat} must be between -90 and 90"));
        }
        if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
            return Err(format!("longitude {lon} must be between -180 and 180"));
        }
        Ok(GeoPoint { lat, lon })
    }

    /// Great-circle distance in metres (haversine formula).
    pub fn distance_m(self, other: GeoPoint) -> f64 {
        let (lat1, lat2) = (self.lat.to_radians(), other.lat.to_radians());
        let d_lat = lat2 - lat1;
        let d_lon = (other.lon - self.lon).to_radians();
        let h = (d_lat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (d_lon / 2.0).sin().powi(2);
        // Rounding can push h a hair outside 0..=1 for antipodal points.
        2.0 * EARTH_RADIUS_M * h.clamp(0.0, 1.0).sqrt().asin()
    }

    /// The point rounded to 3 decimals (about 110 m of latitude), which is
    /// all the relay's registry needs: data minimisation.
    pub fn coarse(self) -> GeoPoint {
        let round = |v: f64| (v * 1000.0).round() / 1000.0;
        GeoPoint {
            lat: round(self.lat),
            lon: round(self.lon),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_distances() {
        // Dallas City Hall to Reunion Tower: about 1.04 km.
        let city_hall = GeoPoint::new(32.7767, -96.7970).expect("valid");
        let tower = GeoPoint::new(32.7755, -96.8089).expect("valid");
        let d = city_hall.distance_m(tower);
        assert!((1_000.0..1_150.0).contains(&d), "{d}");
        // One thousandth of a degree of latitude is about 111 m.
        let a = GeoPoint::new(0.0, 0.0).expect("valid");
        let b = GeoPoint::new(0.001, 0.0).expect("valid");
        assert!((a.distance_m(b) - 111.2).abs() < 0.5);
        assert_eq!(a.distance_m(a), 0.0);
        // Across the antimeridian is short, not half the planet.
        let west = GeoPoint::new(10.0, 179.9995).expect("valid");
        let east = GeoPoint::new(10.0, -179.9995).expect("valid");
        assert!(west.distance_m(east) < 200.0);
    }

    #[test]
    fn out_of_range_and_non_finite_points_are_refused() {
        assert!(GeoPoint::new(91.0, 0.0).is_err());
        assert!(GeoPoint::new(0.0, -180.5).is_err());
        assert!(GeoPoint::new(f64::NAN, 0.0).is_err());
        assert!(GeoPoint::new(0.0, f64::INFINITY).is_err());
        assert!(GeoPoint::new(-90.0, 180.0).is_ok());
    }

    #[test]
    fn coarse_rounds_to_three_decimals() {
        let p = GeoPoint::new(32.776_66, -96.797_04)
            .expect("valid")
            .coarse();
        assert_eq!((p.lat, p.lon), (32.777, -96.797));
    }
}
